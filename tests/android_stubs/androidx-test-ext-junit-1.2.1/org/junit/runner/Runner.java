package org.junit.runner;

/** JUnit 4.13.2 Runner, declaration only. */
public abstract class Runner {
  public Runner() {}
}

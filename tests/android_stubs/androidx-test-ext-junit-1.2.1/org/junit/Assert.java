package org.junit;

/** JUnit 4.13.2 Assert: the assertions the farm test uses, declaration only. */
public class Assert {
  protected Assert() {}
  public static void assertTrue(String message, boolean condition) { throw new RuntimeException("Stub!"); }
  public static void assertTrue(boolean condition) { throw new RuntimeException("Stub!"); }
  public static void assertEquals(String message, Object expected, Object actual) { throw new RuntimeException("Stub!"); }
  public static void assertEquals(Object expected, Object actual) { throw new RuntimeException("Stub!"); }
}

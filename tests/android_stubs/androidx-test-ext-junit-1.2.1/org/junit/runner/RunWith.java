package org.junit.runner;

/** JUnit 4.13.2 @RunWith, declaration only. */
@java.lang.annotation.Retention(java.lang.annotation.RetentionPolicy.RUNTIME)
@java.lang.annotation.Target({java.lang.annotation.ElementType.TYPE})
@java.lang.annotation.Inherited
public @interface RunWith {
  Class<? extends Runner> value();
}

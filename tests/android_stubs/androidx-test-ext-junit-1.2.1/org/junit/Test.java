package org.junit;

/** JUnit 4.13.2 @Test (what androidx.test.ext:junit 1.2.1 brings), declaration only. */
@java.lang.annotation.Retention(java.lang.annotation.RetentionPolicy.RUNTIME)
@java.lang.annotation.Target({java.lang.annotation.ElementType.METHOD})
public @interface Test {
  long timeout() default 0L;
}

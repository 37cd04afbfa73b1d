package androidx.test.ext.junit.runners;

/** androidx.test.ext:junit 1.2.1 AndroidJUnit4: a JUnit 4 runner (declaration only). */
public final class AndroidJUnit4 extends org.junit.runner.Runner {
  public AndroidJUnit4(Class<?> klass) { throw new RuntimeException("Stub!"); }
}

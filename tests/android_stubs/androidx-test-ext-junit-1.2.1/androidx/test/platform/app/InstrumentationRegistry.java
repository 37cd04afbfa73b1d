package androidx.test.platform.app;

/** androidx.test:monitor (a dependency of androidx.test.ext:junit 1.2.1) InstrumentationRegistry. */
public final class InstrumentationRegistry {
  private InstrumentationRegistry() {}
  public static android.app.Instrumentation getInstrumentation() { throw new RuntimeException("Stub!"); }
  public static android.os.Bundle getArguments() { throw new RuntimeException("Stub!"); }
}

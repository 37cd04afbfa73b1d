package android.app;

/** android.app.Instrumentation (API 35): the target app's context for an instrumentation test. */
public class Instrumentation {
  public Instrumentation() {}
  public android.content.Context getTargetContext() { throw new RuntimeException("Stub!"); }
  public android.content.Context getContext() { throw new RuntimeException("Stub!"); }
}

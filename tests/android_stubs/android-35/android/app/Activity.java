package android.app;

/** android.app.Activity (API 35): the lifecycle and window calls the demo app makes. */
public class Activity extends android.view.ContextThemeWrapper {
  public Activity() {}
  protected void onCreate(android.os.Bundle savedInstanceState) { throw new RuntimeException("Stub!"); }
  protected void onDestroy() { throw new RuntimeException("Stub!"); }
  public void setContentView(android.view.View view) { throw new RuntimeException("Stub!"); }
  public final void runOnUiThread(Runnable action) { throw new RuntimeException("Stub!"); }
  public void finish() { throw new RuntimeException("Stub!"); }
  public android.content.Intent getIntent() { throw new RuntimeException("Stub!"); }
}

package android.app;
public class Activity extends android.content.Context {
  protected void onCreate(android.os.Bundle b) {}
  protected void onDestroy() {}
  public void setContentView(android.view.View v) {}
  public final void runOnUiThread(Runnable r) {}
  public void finish() {}
  public android.content.Intent getIntent() { return null; }
}

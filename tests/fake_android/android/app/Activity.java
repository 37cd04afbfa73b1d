package android.app;

/** android.app.Activity, fake: the test drives the lifecycle (fakeCreate, fakeDestroy); runOnUiThread runs at once. */
public class Activity extends android.view.ContextThemeWrapper {
  private android.view.View content;
  private android.content.Intent intent = new android.content.Intent();
  private volatile boolean finishing;
  public Activity() {}
  protected void onCreate(android.os.Bundle savedInstanceState) {}
  protected void onDestroy() {}
  public void setContentView(android.view.View view) { content = view; }
  public final void runOnUiThread(Runnable action) { action.run(); }
  public void finish() { finishing = true; }
  public boolean isFinishing() { return finishing; }
  public android.content.Intent getIntent() { return intent; }
  public void setIntent(android.content.Intent i) { intent = i; }
  public android.view.View fakeContentView() { return content; }
  public void fakeCreate(android.os.Bundle saved) { onCreate(saved); }
  public void fakeDestroy() { onDestroy(); }
}

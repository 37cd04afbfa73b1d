package android.content;

/** android.content.ContextWrapper (API 35): implements Context by delegation. */
public class ContextWrapper extends Context {
  public ContextWrapper(Context base) {}
  @Override public java.io.File getFilesDir() { throw new RuntimeException("Stub!"); }
  @Override public java.io.File getExternalFilesDir(String type) { throw new RuntimeException("Stub!"); }
  @Override public android.content.res.AssetManager getAssets() { throw new RuntimeException("Stub!"); }
  @Override public android.content.pm.PackageManager getPackageManager() { throw new RuntimeException("Stub!"); }
  @Override public String getPackageName() { throw new RuntimeException("Stub!"); }
  @Override public Object getSystemService(String name) { throw new RuntimeException("Stub!"); }
  @Override public android.content.res.Resources getResources() { throw new RuntimeException("Stub!"); }
  @Override public android.content.pm.ApplicationInfo getApplicationInfo() { throw new RuntimeException("Stub!"); }
}

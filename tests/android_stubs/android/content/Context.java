package android.content;
public abstract class Context {
  public static final String ACTIVITY_SERVICE = "activity";
  public java.io.File getFilesDir() { return null; }
  public android.content.res.AssetManager getAssets() { return null; }
  public android.content.pm.PackageManager getPackageManager() { return null; }
  public String getPackageName() { return null; }
  public Object getSystemService(String name) { return null; }
  public android.content.res.Resources getResources() { return null; }
}

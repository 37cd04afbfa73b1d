package android.content;
public abstract class Context {
  public static final String ACTIVITY_SERVICE = "activity";
  public abstract java.io.File getFilesDir();
  public abstract java.io.File getExternalFilesDir(String type);
  public abstract android.content.res.AssetManager getAssets();
  public abstract android.content.pm.PackageManager getPackageManager();
  public abstract String getPackageName();
  public abstract Object getSystemService(String name);
  public abstract android.content.res.Resources getResources();
  public abstract android.content.pm.ApplicationInfo getApplicationInfo();
}

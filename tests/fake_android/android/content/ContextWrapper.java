package android.content;

import fakeandroid.Device;

/** android.content.ContextWrapper, fake: every answer comes from fakeandroid.Device. */
public class ContextWrapper extends Context {
  public ContextWrapper(Context base) {}
  @Override public java.io.File getFilesDir() { Device.filesDir.mkdirs(); return Device.filesDir; }
  @Override public java.io.File getExternalFilesDir(String type) {
    if (Device.externalFilesDir != null) Device.externalFilesDir.mkdirs();
    return Device.externalFilesDir;
  }
  @Override public android.content.res.AssetManager getAssets() { return new android.content.res.AssetManager(Device.assets); }
  @Override public android.content.pm.PackageManager getPackageManager() { return new android.content.pm.PackageManager(); }
  @Override public String getPackageName() { return Device.packageName; }
  @Override public Object getSystemService(String name) { return ACTIVITY_SERVICE.equals(name) ? new android.app.ActivityManager() : null; }
  @Override public android.content.res.Resources getResources() { return new android.content.res.Resources(); }
  @Override public android.content.pm.ApplicationInfo getApplicationInfo() { return new android.content.pm.ApplicationInfo(); }
}

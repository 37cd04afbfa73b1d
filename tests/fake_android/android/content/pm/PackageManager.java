package android.content.pm;
public class PackageManager {
  public PackageInfo getPackageInfo(String p, int f) throws NameNotFoundException {
    if (!p.equals(fakeandroid.Device.packageName)) throw new NameNotFoundException(p);
    PackageInfo i = new PackageInfo(); i.versionName = fakeandroid.Device.versionName; return i; }
  public static class NameNotFoundException extends Exception { public NameNotFoundException(String s) { super(s); } } }

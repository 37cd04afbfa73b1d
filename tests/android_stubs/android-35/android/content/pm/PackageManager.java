package android.content.pm;
public class PackageManager { public PackageInfo getPackageInfo(String p, int f) throws NameNotFoundException { return null; }
  public static class NameNotFoundException extends Exception {} }

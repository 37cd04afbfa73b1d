package android.util;
public final class Log {
  private Log() {}
  private static int log(String level, String tag, String msg) { fakeandroid.Device.log.add(level + " " + tag + ": " + msg); return 0; }
  public static int i(String tag, String msg) { return log("I", tag, msg); }
  public static int w(String tag, String msg) { return log("W", tag, msg); }
  public static int e(String tag, String msg) { return log("E", tag, msg); }
  public static int e(String tag, String msg, Throwable tr) { return log("E", tag, msg + ": " + tr); }
}

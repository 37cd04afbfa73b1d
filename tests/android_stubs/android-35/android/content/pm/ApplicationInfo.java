package android.content.pm;

/** android.content.pm.ApplicationInfo (API 35): the flags field and the debuggable bit. */
public class ApplicationInfo {
  public static final int FLAG_DEBUGGABLE = 1 << 1;
  public int flags;
}

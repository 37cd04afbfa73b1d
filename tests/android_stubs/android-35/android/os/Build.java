package android.os;
/** android.os.Build (API 35). Its fields are read from system properties at run time: not compile-time
 *  constants (android.jar declares them without a value), so the app never inlines a stub's value. */
public class Build {
  public static final String DEVICE, HARDWARE, MANUFACTURER, MODEL, SOC_MANUFACTURER, SOC_MODEL;
  public static final String[] SUPPORTED_ABIS;
  static { DEVICE = HARDWARE = MANUFACTURER = MODEL = SOC_MANUFACTURER = SOC_MODEL = null; SUPPORTED_ABIS = null; }
  public static class VERSION {
    public static final int SDK_INT; public static final String RELEASE;
    static { SDK_INT = 0; RELEASE = null; }
  }
}

package android.os;
public class Build { public static final String DEVICE = "", HARDWARE = "", MANUFACTURER = "", MODEL = "", SOC_MANUFACTURER = "", SOC_MODEL = "";
  public static final String[] SUPPORTED_ABIS = {};
  public static class VERSION { public static final int SDK_INT = 0; public static final String RELEASE = ""; } }

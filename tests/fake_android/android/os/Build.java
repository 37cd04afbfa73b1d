package android.os;
public class Build {
  public static final String DEVICE = field("fakephone"), HARDWARE = field("fake"), MANUFACTURER = field("pocketbert"),
      MODEL = field("JVM phone"), SOC_MANUFACTURER = field("Fakecomm"), SOC_MODEL = field("FK1");
  public static final String[] SUPPORTED_ABIS = {"arm64-v8a"};
  private static String field(String v) { return v; } // not a compile-time constant, as on a phone
  public static class VERSION { public static final int SDK_INT = Integer.getInteger("fakeandroid.sdk", 35);
    public static final String RELEASE = field("15"); } }

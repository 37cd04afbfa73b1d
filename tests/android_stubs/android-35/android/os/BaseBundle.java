package android.os;

/** android.os.BaseBundle (API 35): where Bundle's typed getters are declared. */
public class BaseBundle {
  BaseBundle() {}
  public boolean containsKey(String key) { throw new RuntimeException("Stub!"); }
  public String getString(String key) { throw new RuntimeException("Stub!"); }
  public String getString(String key, String defaultValue) { throw new RuntimeException("Stub!"); }
  public int getInt(String key) { throw new RuntimeException("Stub!"); }
  public int getInt(String key, int defaultValue) { throw new RuntimeException("Stub!"); }
  public long getLong(String key) { throw new RuntimeException("Stub!"); }
  public boolean getBoolean(String key) { throw new RuntimeException("Stub!"); }
  public Object get(String key) { throw new RuntimeException("Stub!"); }
  public java.util.Set<String> keySet() { throw new RuntimeException("Stub!"); }
}

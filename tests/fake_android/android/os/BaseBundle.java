package android.os;
public class BaseBundle {
  final java.util.LinkedHashMap<String, Object> map = new java.util.LinkedHashMap<>();
  BaseBundle() {}
  public boolean containsKey(String key) { return map.containsKey(key); }
  public String getString(String key) { Object v = map.get(key); return v instanceof String ? (String) v : null; }
  public String getString(String key, String d) { String v = getString(key); return v == null ? d : v; }
  public int getInt(String key) { return getInt(key, 0); }
  public int getInt(String key, int d) { Object v = map.get(key); return v instanceof Integer ? (Integer) v : d; }
  public long getLong(String key) { Object v = map.get(key); return v instanceof Long ? (Long) v : 0L; }
  public boolean getBoolean(String key) { return Boolean.TRUE.equals(map.get(key)); }
  public Object get(String key) {
    Object v = map.get(key);
    if (v instanceof RuntimeException) throw (RuntimeException) v; // a Parcelable that cannot be read
    return v;
  }
  public java.util.Set<String> keySet() { return map.keySet(); }
}

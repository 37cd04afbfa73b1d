package android.os;
public final class Bundle extends BaseBundle {
  public Bundle() {}
  public void putString(String k, String v) { map.put(k, v); }
  public void putInt(String k, int v) { map.put(k, v); }
  public void putLong(String k, long v) { map.put(k, v); }
  public void putFloat(String k, float v) { map.put(k, v); }
  public void putBoolean(String k, boolean v) { map.put(k, v); }
  public void fakeUnreadable(String k, RuntimeException e) { map.put(k, e); }
}

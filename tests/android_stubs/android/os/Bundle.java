package android.os;
public class Bundle { public String getString(String k) { return null; } public int getInt(String k) { return 0; }
  public boolean containsKey(String k) { return false; } }

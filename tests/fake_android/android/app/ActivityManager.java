package android.app;
public class ActivityManager { public static class MemoryInfo { public long totalMem; }
  public void getMemoryInfo(MemoryInfo m) { m.totalMem = fakeandroid.Device.totalMem; } }

package android.content.res;
public class Resources { public android.util.DisplayMetrics getDisplayMetrics() {
  android.util.DisplayMetrics m = new android.util.DisplayMetrics(); m.density = fakeandroid.Device.density; return m; } }

package android.graphics;
public final class Insets {
  private Insets(int l, int t, int r, int b) { left = l; top = t; right = r; bottom = b; }
  public final int left; public final int top; public final int right; public final int bottom;
  public static Insets of(int l, int t, int r, int b) { return new Insets(l, t, r, b); }
}

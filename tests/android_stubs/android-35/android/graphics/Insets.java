package android.graphics;
/** android.graphics.Insets (API 29): four final int fields. */
public final class Insets {
  Insets() { left = top = right = bottom = 0; }
  public final int left; public final int top; public final int right; public final int bottom;
}

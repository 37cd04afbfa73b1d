package android.view;
/** android.view.WindowInsets (API 35): getInsets(typeMask) and Type are API 30; CONSUMED is API 30. */
public final class WindowInsets {
  WindowInsets() {}
  public static final WindowInsets CONSUMED = null;
  public android.graphics.Insets getInsets(int typeMask) { throw new RuntimeException("Stub!"); }
  public static final class Type {
    Type() {}
    public static int systemBars() { throw new RuntimeException("Stub!"); }
    public static int ime() { throw new RuntimeException("Stub!"); }
    public static int displayCutout() { throw new RuntimeException("Stub!"); }
  }
}

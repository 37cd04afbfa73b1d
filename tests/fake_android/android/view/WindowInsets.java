package android.view;
public final class WindowInsets {
  private final android.graphics.Insets bars;
  public WindowInsets(android.graphics.Insets bars) { this.bars = bars; }
  public static final WindowInsets CONSUMED = new WindowInsets(android.graphics.Insets.of(0, 0, 0, 0));
  public android.graphics.Insets getInsets(int typeMask) { return bars; }
  public static final class Type { Type() {}
    public static int systemBars() { return 519; } public static int ime() { return 8; } public static int displayCutout() { return 128; } }
}

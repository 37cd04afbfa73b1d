package android.view;
public class View {
  private boolean enabled = true;
  private OnClickListener click;
  private OnApplyWindowInsetsListener insets;
  public final int[] padding = new int[4];
  public View(android.content.Context c) {}
  public void setPadding(int a, int b, int c, int d) { padding[0] = a; padding[1] = b; padding[2] = c; padding[3] = d; }
  public void setEnabled(boolean e) { enabled = e; } public boolean isEnabled() { return enabled; }
  public interface OnClickListener { void onClick(View v); } public void setOnClickListener(OnClickListener l) { click = l; }
  public boolean performClick() { if (click == null || !enabled) return false; click.onClick(this); return true; }
  public interface OnApplyWindowInsetsListener { WindowInsets onApplyWindowInsets(View v, WindowInsets insets); }
  public void setOnApplyWindowInsetsListener(OnApplyWindowInsetsListener l) { insets = l; }
  public WindowInsets dispatchApplyWindowInsets(WindowInsets i) { return insets == null ? i : insets.onApplyWindowInsets(this, i); }
}

package android.view;
public class View { public View(android.content.Context c) {} public void setPadding(int a, int b, int c, int d) {}
  public void setEnabled(boolean e) {} public boolean isEnabled() { return true; }
  public interface OnClickListener { void onClick(View v); } public void setOnClickListener(OnClickListener l) {}
  /** API 20. */
  public interface OnApplyWindowInsetsListener { WindowInsets onApplyWindowInsets(View v, WindowInsets insets); }
  public void setOnApplyWindowInsetsListener(OnApplyWindowInsetsListener listener) {} }

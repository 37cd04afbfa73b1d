package android.widget;
public class TextView extends android.view.View { public TextView(android.content.Context c) { super(c); }
  public CharSequence getText() { return null; } public void setText(CharSequence t) {}
  public void setTypeface(android.graphics.Typeface tf, int style) {} public void setTypeface(android.graphics.Typeface tf) {}
  public android.graphics.Typeface getTypeface() { return null; }
  public float getTextSize() { return 0; } public void setTextSize(float s) {}
  public void setSingleLine(boolean s) {} public boolean isSingleLine() { return false; }
  public void setHint(CharSequence h) {} public CharSequence getHint() { return null; }
  public void setImeOptions(int o) {} public int getImeOptions() { return 0; }
  public void setMinLines(int n) {} public int getMinLines() { return 0; }
  public void setGravity(int g) {} public int getGravity() { return 0; }
  public interface OnEditorActionListener { boolean onEditorAction(TextView v, int actionId, android.view.KeyEvent event); }
  public void setOnEditorActionListener(OnEditorActionListener l) {} }

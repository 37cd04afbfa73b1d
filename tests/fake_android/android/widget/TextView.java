package android.widget;
public class TextView extends android.view.View { private CharSequence text = ""; private android.graphics.Typeface tf; private float size = 14;
  private boolean single; private CharSequence hint; private int ime, minLines, gravity; private OnEditorActionListener editor;
  public TextView(android.content.Context c) { super(c); }
  public CharSequence getText() { return text; } public void setText(CharSequence t) { text = t == null ? "" : t; }
  public void setTypeface(android.graphics.Typeface tf, int style) { this.tf = tf; } public void setTypeface(android.graphics.Typeface tf) { this.tf = tf; }
  public android.graphics.Typeface getTypeface() { return tf; }
  public float getTextSize() { return size; } public void setTextSize(float s) { size = s; }
  public void setSingleLine(boolean s) { single = s; } public boolean isSingleLine() { return single; }
  public void setHint(CharSequence h) { hint = h; } public CharSequence getHint() { return hint; }
  public void setImeOptions(int o) { ime = o; } public int getImeOptions() { return ime; }
  public void setMinLines(int n) { minLines = n; } public int getMinLines() { return minLines; }
  public void setGravity(int g) { gravity = g; } public int getGravity() { return gravity; }
  public interface OnEditorActionListener { boolean onEditorAction(TextView v, int actionId, android.view.KeyEvent event); }
  public void setOnEditorActionListener(OnEditorActionListener l) { editor = l; }
  public boolean onEditorAction(int actionId) { return editor != null && editor.onEditorAction(this, actionId, null); } }

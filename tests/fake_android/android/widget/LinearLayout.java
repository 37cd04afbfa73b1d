package android.widget;
public class LinearLayout extends android.view.ViewGroup { public static final int VERTICAL = 1; private int o;
  public LinearLayout(android.content.Context c) { super(c); } public void setOrientation(int o) { this.o = o; } public int getOrientation() { return o; } }

package android.view;
public class ViewGroup extends View { private final java.util.List<View> children = new java.util.ArrayList<>();
  public ViewGroup(android.content.Context c) { super(c); } public void addView(View v) { children.add(v); }
  public int getChildCount() { return children.size(); } public View getChildAt(int i) { return children.get(i); } }

package android.view;
public class ViewGroup extends View { public ViewGroup(android.content.Context c) { super(c); } public void addView(View v) {} }

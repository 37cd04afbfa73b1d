package android.widget;
public class ArrayAdapter<T> implements SpinnerAdapter { public final java.util.List<T> items;
  public ArrayAdapter(android.content.Context c, int res, java.util.List<T> objects) { items = objects; } }

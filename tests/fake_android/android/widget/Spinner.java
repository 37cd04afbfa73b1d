package android.widget;
public class Spinner extends AdapterView<SpinnerAdapter> { private SpinnerAdapter adapter;
  public Spinner(android.content.Context c) { super(c); }
  public void setAdapter(SpinnerAdapter a) { adapter = a; } public SpinnerAdapter getAdapter() { return adapter; } }

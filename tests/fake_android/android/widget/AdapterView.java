package android.widget;
public abstract class AdapterView<T> extends android.view.ViewGroup { private OnItemSelectedListener listener;
  public AdapterView(android.content.Context c) { super(c); }
  public interface OnItemSelectedListener { void onItemSelected(AdapterView<?> parent, android.view.View view, int position, long id);
    void onNothingSelected(AdapterView<?> parent); }
  public void setOnItemSelectedListener(OnItemSelectedListener l) { listener = l; }
  public OnItemSelectedListener getOnItemSelectedListener() { return listener; }
  public void setSelection(int position) { if (listener != null) listener.onItemSelected(this, null, position, position); } }

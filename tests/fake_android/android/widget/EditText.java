package android.widget;
public class EditText extends TextView { private android.text.FakeEditable editable = new android.text.FakeEditable("");
  public EditText(android.content.Context c) { super(c); }
  @Override public void setText(CharSequence t) { editable = new android.text.FakeEditable(t); }
  @Override public android.text.Editable getText() { return editable; } }

package android.text;

/** The text of an EditText, with its spans (what SpannableStringBuilder keeps). */
public final class FakeEditable implements Editable {
  private final String text;
  public final java.util.Map<Object, int[]> spans = new java.util.LinkedHashMap<>();
  public FakeEditable(CharSequence t) { text = t == null ? "" : t.toString(); }
  public int length() { return text.length(); }
  public char charAt(int i) { return text.charAt(i); }
  public CharSequence subSequence(int a, int b) { return text.subSequence(a, b); }
  @Override public String toString() { return text; }
  public void setSpan(Object what, int start, int end, int flags) {
    if (start < 0 || end > text.length() || start > end) throw new IndexOutOfBoundsException("setSpan (" + start + " ... " + end + ") ends beyond length " + text.length());
    spans.put(what, new int[] {start, end});
  }
  public void removeSpan(Object what) { spans.remove(what); }
  @SuppressWarnings("unchecked")
  public <T> T[] getSpans(int start, int end, Class<T> type) {
    return spans.keySet().stream().filter(type::isInstance).toArray(n -> (T[]) java.lang.reflect.Array.newInstance(type, n));
  }
}

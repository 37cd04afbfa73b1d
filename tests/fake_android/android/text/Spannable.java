package android.text;
public interface Spannable extends CharSequence { int SPAN_EXCLUSIVE_EXCLUSIVE = 33;
  void setSpan(Object what, int start, int end, int flags); void removeSpan(Object what);
  <T> T[] getSpans(int start, int end, Class<T> type); }

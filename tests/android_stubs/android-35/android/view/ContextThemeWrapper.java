package android.view;

/** android.view.ContextThemeWrapper (API 35): Activity's superclass. */
public class ContextThemeWrapper extends android.content.ContextWrapper {
  public ContextThemeWrapper() { super(null); }
}

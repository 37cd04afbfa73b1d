package android.app;
public class Instrumentation { public android.content.Context getTargetContext() { return new android.view.ContextThemeWrapper(); } }

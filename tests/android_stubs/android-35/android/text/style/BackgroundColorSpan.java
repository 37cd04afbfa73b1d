package android.text.style;
public class BackgroundColorSpan { public BackgroundColorSpan(int color) {} }

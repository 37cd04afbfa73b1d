package android;
public class R { public static class layout { public static final int simple_spinner_dropdown_item = 17367049; } }

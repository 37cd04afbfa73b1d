package android.view;
public class Gravity { public static final int TOP = 48; }

package android.content;
public class Intent { private android.os.Bundle extras;
  public android.os.Bundle getExtras() { return extras; }
  public Intent fakeExtras(android.os.Bundle b) { extras = b; return this; } }

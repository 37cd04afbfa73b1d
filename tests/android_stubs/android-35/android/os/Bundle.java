package android.os;

/** android.os.Bundle (API 35). */
public final class Bundle extends BaseBundle {
  public Bundle() {}
}

package android.content.res;
/** android.content.res.AssetManager (API 35): final class; open and list throw the checked IOException. */
public final class AssetManager {
  AssetManager() {}
  public final java.io.InputStream open(String fileName) throws java.io.IOException { throw new RuntimeException("Stub!"); }
  public final String[] list(String path) throws java.io.IOException { throw new RuntimeException("Stub!"); }
}

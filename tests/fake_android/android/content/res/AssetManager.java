package android.content.res;

import java.io.File;

/** android.content.res.AssetManager, fake: the APK's assets are a folder. */
public final class AssetManager {
  private final File root;
  public AssetManager(File root) { this.root = root; }
  public final java.io.InputStream open(String fileName) throws java.io.IOException {
    File f = new File(root, fileName);
    if (!f.isFile()) throw new java.io.FileNotFoundException(fileName);
    return new java.io.FileInputStream(f);
  }
  public final String[] list(String path) throws java.io.IOException {
    String[] names = new File(root, path).list();
    return names == null ? new String[0] : names;
  }
}

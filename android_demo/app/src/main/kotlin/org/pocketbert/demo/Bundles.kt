package org.pocketbert.demo

import android.content.Context
import android.content.res.AssetManager
import java.io.InputStream

/** The APK's assets through Android's AssetManager (the JVM tests give BundleStore a folder instead). */
class AndroidAssets(private val assets: AssetManager) : AssetSource {
    override fun open(path: String): InputStream = assets.open(path)
    override fun list(path: String): List<String> = assets.list(path)?.toList() ?: emptyList()
}

/** The app's bundles (BundleStore) on this device: the APK's assets, copied out under the files folder. */
object Bundles {
    fun store(context: Context): BundleStore = BundleStore(AndroidAssets(context.assets), context.filesDir)
}

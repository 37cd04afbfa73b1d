package org.pocketbert.demo

import android.content.Context
import org.json.JSONObject
import org.pocketbert.qa.BenchLaunch
import org.pocketbert.qa.BundleManifest
import org.pocketbert.qa.DevicePaths
import java.io.File

/**
 * Bundles the app can run: those packaged in the APK by `pocketbert android bundle`
 * (assets/bundles/NAME, listed in assets/bundles/models.json) and any folder on the device
 * holding manifest.json + vocab.txt + the model file (pushed with adb).
 */
object Bundles {
    private const val ASSETS = "bundles"

    /** Names of the packaged bundles, in models.json order (empty when none was packaged). */
    fun packaged(context: Context): List<String> {
        val text = try {
            context.assets.open("$ASSETS/models.json").bufferedReader().use { it.readText() }
        } catch (e: java.io.IOException) {
            return emptyList()
        }
        val list = JSONObject(text).getJSONArray("bundles")
        return (0 until list.length()).map { list.getJSONObject(it).getString("name") }
    }

    /** Where `adb push` puts bundles for the app to find without a rebuild. */
    const val PUSHED = "/data/local/tmp/pocketbert/bundles"

    /** Bundle folders pushed to [PUSHED] (absolute paths), when the device lets the app read them. */
    fun pushed(): List<String> =
        File(PUSHED).listFiles()?.filter { File(it, BundleManifest.FILE).isFile }?.map { it.path }?.sorted() ?: emptyList()

    /**
     * A bundle folder on disk (ExecuTorch loads from a path): [spec] is a path (absolute, or relative
     * to the app's files folder; only the app's folders and [PUSHED] are allowed) or the name of a
     * packaged bundle, which is copied out of the APK once (and again whenever its manifest changes).
     */
    fun resolve(context: Context, spec: String): File =
        BenchLaunch.resolveBundle(spec, DevicePaths(context.filesDir.path), { packagedDir(context, it) }, { packaged(context) })

    /** The folder of packaged bundle [name], copied out of the APK; null when no such bundle is packaged. */
    fun packagedDir(context: Context, name: String): File? = if (name in packaged(context)) extract(context, name) else null

    private fun extract(context: Context, name: String): File {
        val dir = File(context.filesDir, "$ASSETS/$name")
        val manifestText = context.assets.open("$ASSETS/$name/${BundleManifest.FILE}").bufferedReader().use { it.readText() }
        val marker = File(dir, ".installed")
        if (marker.isFile && marker.readText() == manifestText.hashCode().toString()) return dir
        val manifest = BundleManifest.parse(manifestText, "$name/${BundleManifest.FILE}")
        val tmp = File(context.filesDir, "$ASSETS/.$name.tmp")
        tmp.deleteRecursively()
        tmp.mkdirs()
        for (f in listOf(BundleManifest.FILE, BundleManifest.VOCAB, manifest.modelFile)) {
            context.assets.open("$ASSETS/$name/$f").use { input -> File(tmp, f).outputStream().use { input.copyTo(it) } }
        }
        manifest.verify(tmp) // sha256 of the model and vocab against the manifest
        File(tmp, ".installed").writeText(manifestText.hashCode().toString())
        dir.deleteRecursively()
        check(tmp.renameTo(dir)) { "cannot move $tmp to $dir" }
        return dir
    }
}

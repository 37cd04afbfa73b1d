package org.pocketbert.demo

import org.pocketbert.qa.BenchLaunch
import org.pocketbert.qa.BundleException
import org.pocketbert.qa.BundleManifest
import org.pocketbert.qa.DevicePaths
import org.pocketbert.qa.Json
import java.io.File
import java.io.FileNotFoundException
import java.io.IOException
import java.io.InputStream

/** The APK's assets as the app reads them: AssetManager on a phone (Bundles.kt), a folder in the JVM tests. */
interface AssetSource {
    /** The asset at [path]; FileNotFoundException when there is none. */
    fun open(path: String): InputStream

    /** The names under folder [path] (empty when there is none). */
    fun list(path: String): List<String>
}

/**
 * The model list `pocketbert android bundle` writes to assets/bundles/models.json: the names the
 * picker shows, and the one-line [problem] when the file cannot be used as a whole or in part
 * (a name that is not a plain folder name, a duplicate, a name without its asset folder).
 */
data class ModelList(val names: List<String>, val problem: String? = null) {
    companion object {
        const val FILE = "bundles/models.json"
        const val FORMAT = "pocketbert-android-models/1"
        const val MAX_BYTES = 1 shl 20
        private const val FIX = "re-run pocketbert android bundle and reinstall the app"
        private val NAME = Regex("[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")

        /** models.json's text to names; [folders]: the asset folders under bundles/ (null: not checked). */
        fun parse(text: String, folders: Set<String>? = null): ModelList {
            val root = try { Json.parse(text) } catch (e: Json.ParseException) {
                return ModelList(emptyList(), "$FILE is not valid JSON (${e.message}): $FIX")
            }
            if (root !is Map<*, *>) return ModelList(emptyList(), "$FILE is not a JSON object: $FIX")
            if (root["format"] != FORMAT) return ModelList(emptyList(), "$FILE has format ${root["format"]}, expected $FORMAT: $FIX")
            val entries = root["bundles"] as? List<*> ?: return ModelList(emptyList(), "$FILE has no 'bundles' list: $FIX")
            val names = ArrayList<String>()
            val problems = ArrayList<String>()
            for ((i, entry) in entries.withIndex()) {
                val name = (entry as? Map<*, *>)?.get("name")
                when {
                    name !is String -> problems.add("entry $i has no name")
                    !NAME.matches(name) -> problems.add("'${name.take(40)}' is not a folder name")
                    name in names -> problems.add("'$name' is listed twice")
                    folders != null && name !in folders -> problems.add("'$name' is not in the APK")
                    else -> names.add(name)
                }
            }
            val problem = if (problems.isEmpty()) null else
                "$FILE: ${problems.take(3).joinToString("; ")}${if (problems.size > 3) " (and ${problems.size - 3} more)" else ""}: $FIX"
            return ModelList(names, problem)
        }
    }
}

/**
 * Bundles the app can run: those packaged in the APK by `pocketbert android bundle`
 * (assets/bundles/NAME, listed in models.json), copied out once into [filesDir]/bundles/NAME with
 * each file's sha256 checked against the manifest, and folders pushed with adb under [pushedRoot].
 * Nothing here throws for bad input but BundleException (one line).
 */
class BundleStore(private val assets: AssetSource, private val filesDir: File, private val pushedRoot: File = File(PUSHED)) {
    /** The packaged bundles' names (in models.json order) and what is wrong with the list, if anything. */
    fun packaged(): ModelList {
        val text = try {
            readAsset(ModelList.FILE, ModelList.MAX_BYTES)
        } catch (e: FileNotFoundException) {
            return ModelList(emptyList()) // nothing packaged: the screen says how to package a bundle
        } catch (e: IOException) {
            return ModelList(emptyList(), "cannot read ${ModelList.FILE}: ${e.message}")
        }
        val folders = try { assets.list(ASSETS).toSet() } catch (e: IOException) { null }
        return ModelList.parse(text, folders)
    }

    /** Bundle folders pushed to [pushedRoot] (absolute paths); none when the device keeps the app out of it. */
    fun pushed(): List<String> = try {
        pushedRoot.listFiles()?.filter { File(it, BundleManifest.FILE).isFile }?.map { it.path }?.sorted() ?: emptyList()
    } catch (e: SecurityException) {
        emptyList()
    }

    /** The folder of packaged bundle [name], copied out of the APK; null when no such bundle is packaged. */
    fun packagedDir(name: String): File? = if (name in packaged().names) extract(name) else null

    /**
     * A bundle folder on disk (ExecuTorch loads from a path): [spec] is a path (absolute, or
     * relative to the app's files folder; only the app's folders and the pushed folder are allowed)
     * or the name of a packaged bundle.
     */
    fun resolve(spec: String): File =
        BenchLaunch.resolveBundle(spec, DevicePaths(filesDir.path), ::packagedDir) { packaged().names }

    private fun extract(name: String): File {
        val dir = File(filesDir, "$ASSETS/$name")
        val manifestText = try { readAsset("$ASSETS/$name/${BundleManifest.FILE}", MAX_MANIFEST) } catch (e: IOException) {
            throw BundleException("packaged bundle $name has no readable ${BundleManifest.FILE} (${e.message}): re-run pocketbert android bundle")
        }
        val stamp = sha256(manifestText.toByteArray())
        val marker = File(dir, INSTALLED)
        if (marker.isFile && marker.readText() == stamp) return dir
        val manifest = BundleManifest.parse(manifestText, "$name/${BundleManifest.FILE}")
        val tmp = File(filesDir, "$ASSETS/.$name.tmp")
        tmp.deleteRecursively()
        try {
            if (!tmp.mkdirs()) throw BundleException("cannot create $tmp")
            File(tmp, BundleManifest.FILE).writeText(manifestText)
            for (f in listOf(BundleManifest.VOCAB, manifest.modelFile)) {
                try {
                    assets.open("$ASSETS/$name/$f").use { input -> File(tmp, f).outputStream().use { input.copyTo(it) } }
                } catch (e: IOException) {
                    throw BundleException("packaged bundle $name: cannot copy $f out of the APK (${e.message})")
                }
            }
            manifest.verify(tmp) // the model and vocab against their size and sha256 in the manifest
            File(tmp, INSTALLED).writeText(stamp)
            dir.deleteRecursively()
            if (!tmp.renameTo(dir)) throw BundleException("cannot move $tmp to $dir")
        } finally {
            tmp.deleteRecursively()
        }
        return dir
    }

    /** The asset's text, at most [maxBytes] (InputStream.readNBytes is API 33: minSdk is 28). */
    private fun readAsset(path: String, maxBytes: Int): String = assets.open(path).use { input ->
        val out = java.io.ByteArrayOutputStream()
        val buf = ByteArray(1 shl 14)
        while (true) {
            val n = input.read(buf)
            if (n < 0) break
            out.write(buf, 0, n)
            if (out.size() > maxBytes) throw IOException("$path is larger than $maxBytes bytes")
        }
        out.toString("UTF-8")
    }

    companion object {
        const val ASSETS = "bundles"
        /** Where `adb push` puts bundles for the app to find without a rebuild. */
        const val PUSHED = "/data/local/tmp/pocketbert/bundles"
        private const val INSTALLED = ".installed"
        private const val MAX_MANIFEST = 1 shl 20

        fun sha256(bytes: ByteArray): String =
            java.security.MessageDigest.getInstance("SHA-256").digest(bytes).joinToString("") { "%02x".format(it) }
    }
}

package org.pocketbert.qa

import java.io.File
import java.security.MessageDigest

/**
 * What the app needs from a bundle's manifest.json (format "pocketbert-bundle/2" or /1, written by
 * `pocketbert export`): the runtime that runs it (`target`), the model file, its inputs in order (names, dtypes), the window length and whether the
 * sequence axis is dynamic, the special token ids and the tokenizer's casing. Nothing of this is
 * a constant in the app.
 */
data class BundleManifest(
    val target: String,
    val precision: String,
    val task: String,
    val modelType: String,
    val source: String,
    val tokenizerKind: String, // always "wordpiece": parse refuses the others
    val modelFile: String,
    val seqLen: Int,
    val dynamicSeq: Boolean,
    val inputNames: List<String>,
    val inputDtypes: List<String>, // per input, e.g. "int64" (what an ONNX Runtime session must be fed)
    val outputNames: List<String>,
    val special: SpecialTokens,
    val doLowerCase: Boolean,
    val files: Map<String, FileEntry>,
    val parameters: Map<String, Any?>,
    val gitRevision: String?,
) {
    data class FileEntry(val bytes: Long, val sha256: String)

    /** The model's name as `pocketbert bench` writes it (a preset name, or the folder's name). */
    val model: String get() = source.removePrefix("preset:").trimEnd('/').substringAfterLast('/')

    /**
     * Check [names] of the bundle folder [dir] against the sizes and sha256 in the manifest
     * (default: the model file and vocab.txt, what the app reads). Throws BundleException.
     */
    fun verify(dir: File, names: List<String> = listOf(modelFile, VOCAB)) {
        for (name in names) {
            val meta = files[name] ?: throw BundleException("$dir: manifest.json does not list $name")
            val f = File(dir, name)
            if (!f.isFile) throw BundleException("$dir: $name is missing")
            if (f.length() != meta.bytes || sha256(f) != meta.sha256) {
                throw BundleException("$dir: $name does not match its sha256 in manifest.json (modified or truncated): re-export the bundle")
            }
        }
    }

    companion object {
        const val FORMAT = "pocketbert-bundle/2"
        /** The formats the app reads: /2 only added the delegation coverage, which the app does not need. */
        val READS = setOf(FORMAT, "pocketbert-bundle/1")
        const val FILE = "manifest.json"
        const val VOCAB = "vocab.txt"

        /** Parse and check a manifest: a question-answering bundle (any runtime: Engines.pick checks it), or BundleException. */
        fun parse(text: String, where: String = FILE): BundleManifest {
            val m = try { Json.parse(text).asObj() } catch (e: IllegalArgumentException) {
                throw BundleException("$where: ${e.message}")
            }
            try {
                val format = m["format"]
                if (format !in READS) throw BundleException("$where has format $format, expected $FORMAT: re-export with `pocketbert export`")
                val target = m.str("target") // the runtime that runs it: the app picks its engine by it (Engines.pick)
                val task = m.str("task")
                if (task != "question-answering") throw BundleException("$where is a '$task' model; the app needs a question-answering one (pocketbert export --task question-answering)")
                // issue 30: the app tokenizes with WordPiece (bert, distilbert, electra, mobilebert
                // bundles); a bundle made for another tokenizer is refused here, before anything runs
                val tokenizer = m["tokenizer_kind"] ?: "wordpiece" // older bundles are all WordPiece
                if (tokenizer != "wordpiece") throw BundleException("$where needs a '$tokenizer' tokenizer; the app " +
                    "tokenizes WordPiece only (bert, distilbert, electra, mobilebert bundles)")
                val modelFile = m.str("model_file")
                if ('/' in modelFile || '\\' in modelFile || modelFile.startsWith(".") || modelFile.isEmpty()) {
                    throw BundleException("$where: model_file must be a file name in the bundle folder, got '$modelFile'")
                }
                val seqLen = m.int("seq_len")
                if (seqLen !in 4..BenchConfig.MAX_SEQ_LEN) throw BundleException("$where: seq_len $seqLen is not in 4..${BenchConfig.MAX_SEQ_LEN}")
                val sp = m.obj("special_tokens")
                val files = m.obj("files").mapValues { (k, v) ->
                    val f = v.asObj()
                    FileEntry((f["bytes"] as? Number)?.toLong() ?: throw IllegalArgumentException("'files.$k.bytes' missing or not a number"), f.str("sha256"))
                }
                return BundleManifest(
                    target = target, precision = m.str("precision"), task = task,
                    modelType = m["model_type"] as? String ?: "bert", source = m.str("source"),
                    tokenizerKind = "wordpiece", modelFile = modelFile, seqLen = seqLen,
                    dynamicSeq = m["dynamic_seq"] as? Boolean ?: false,
                    inputNames = m.list("inputs").map { it.asObj().str("name") },
                    inputDtypes = m.list("inputs").map { it.asObj()["dtype"] as? String ?: "int64" },
                    outputNames = m.list("outputs").map { it.asObj().str("name") },
                    special = SpecialTokens(cls = sp.int("cls_token_id"), sep = sp.int("sep_token_id"),
                        pad = sp.int("pad_token_id"), unk = sp.int("unk_token_id"),
                        mask = (sp["mask_token_id"] as? Number)?.toInt()),
                    doLowerCase = m["do_lower_case"] as? Boolean ?: true,
                    files = files,
                    parameters = (m["parameters"] as? Map<*, *>)?.let { it.asObj() } ?: emptyMap(),
                    gitRevision = m["git_revision"] as? String,
                )
            } catch (e: BundleException) {
                throw e
            } catch (e: IllegalArgumentException) {
                throw BundleException("$where: ${e.message}")
            }
        }

        fun sha256(f: File): String {
            val md = MessageDigest.getInstance("SHA-256")
            f.inputStream().use { input ->
                val buf = ByteArray(1 shl 16)
                while (true) {
                    val n = input.read(buf)
                    if (n < 0) break
                    md.update(buf, 0, n)
                }
            }
            return md.digest().joinToString("") { "%02x".format(it) }
        }
    }
}

/** A bundle the app cannot use; the message says why, in one line. */
class BundleException(message: String) : IllegalArgumentException(message)

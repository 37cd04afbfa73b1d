package org.pocketbert.demo

import org.pocketbert.qa.BundleManifest
import org.pocketbert.qa.Engine
import org.pocketbert.qa.ExecuTorchThreads
import org.pocketbert.qa.Json
import org.pocketbert.qa.QaModel
import java.io.File
import java.io.FileNotFoundException
import java.io.InputStream
import java.security.MessageDigest

/** The APK's assets as a folder (what `pocketbert android bundle` writes to app/src/main/assets). */
class FolderAssets(private val root: File) : AssetSource {
    override fun open(path: String): InputStream {
        val f = File(root, path)
        if (!f.isFile) throw FileNotFoundException(path)
        return f.inputStream()
    }

    override fun list(path: String): List<String> = File(root, path).list()?.sorted() ?: emptyList()
}

object Fixtures {
    val VOCAB = listOf("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "who", "what",
        "where", "did", "?", ".", ",", "a", "dog", "ran", "paris", "is", "in", "france")

    fun sha(f: File) = MessageDigest.getInstance("SHA-256").digest(f.readBytes()).joinToString("") { "%02x".format(it) }

    /** A bundle folder as `pocketbert export` lays it out (a stand-in model file: the engines here are fakes). */
    fun bundle(dir: File, target: String = "executorch", modelType: String = "bert", extra: Map<String, Any?> = emptyMap(),
               modelFile: String = if (target == "onnx") "model.onnx" else "model.pte", model: ByteArray? = null): File {
        dir.mkdirs()
        File(dir, "vocab.txt").writeText(VOCAB.joinToString("") { "$it\n" })
        File(dir, modelFile).writeBytes(model ?: ByteArray(4096) { (it * 7).toByte() })
        val files = listOf(modelFile, "vocab.txt").associateWith { mapOf("bytes" to File(dir, it).length(), "sha256" to sha(File(dir, it))) }
        val inputs = if (modelType == "distilbert") listOf("input_ids", "attention_mask") else listOf("input_ids", "attention_mask", "token_type_ids")
        val manifest = linkedMapOf<String, Any?>(
            "format" to "pocketbert-bundle/2", "target" to target, "precision" to "fp32", "task" to "question-answering",
            "model_type" to modelType, "source" to "preset:tiny-$modelType", "model_file" to modelFile, "seq_len" to 64,
            "dynamic_seq" to true, "inputs" to inputs.map { mapOf("name" to it, "dtype" to "int64") },
            "outputs" to listOf("start_logits", "end_logits").map { mapOf("name" to it, "dtype" to "float32") },
            "special_tokens" to mapOf("pad_token_id" to 0, "unk_token_id" to 1, "cls_token_id" to 2, "sep_token_id" to 3, "mask_token_id" to 4),
            "do_lower_case" to true, "parameters" to mapOf("total" to 1000), "files" to files,
        )
        manifest.putAll(extra)
        File(dir, BundleManifest.FILE).writeText(Json.write(manifest, 1))
        return dir
    }

    /** assets/bundles/NAME for each name and the models.json `pocketbert android bundle` writes. */
    fun assets(root: File, vararg names: String, target: String = "executorch", model: ByteArray? = null): File {
        for (n in names) bundle(File(root, "bundles/$n"), target, model = model)
        File(root, "bundles/models.json").writeText(Json.write(mapOf("format" to ModelList.FORMAT,
            "bundles" to names.map { mapOf("name" to it, "runtime" to target) }), 2))
        return root
    }
}

/** A model whose answer is the first token with id [answerId] (e.g. "paris"), whatever the runtime. */
class PieceModel(private val answerId: Long, private val fail: String? = null) : QaModel {
    var closed = false
    override fun run(inputs: Map<String, LongArray>, length: Int): Pair<FloatArray, FloatArray> {
        fail?.let { throw IllegalStateException(it) }
        val ids = inputs.getValue("input_ids")
        val at = ids.indexOfFirst { it == answerId }
        val logits = FloatArray(length) { if (it == at) 10f else 0f }
        return logits to logits.copyOf()
    }

    override fun close() { closed = true }
}

/** An engine of the app's kind for [runtime] whose models are PieceModels (the JVM has no ExecuTorch / ONNX Runtime native library). */
class PieceEngine(override val runtime: String, private val answerId: Long = 20, private val fail: String? = null,
                  private val loadFails: String? = null) : Engine {
    val loaded = ArrayList<PieceModel>()
    override val threadsRule = ExecuTorchThreads.RULE
    override fun threadsEffective(requested: Int, processors: Int) = ExecuTorchThreads.effective(requested, processors)
    override fun load(dir: File, manifest: BundleManifest, threads: Int): QaModel {
        loadFails?.let { throw IllegalStateException(it) }
        return PieceModel(answerId, fail).also { loaded.add(it) }
    }
}

package org.pocketbert.demo

import ai.onnxruntime.OnnxTensor
import ai.onnxruntime.OrtEnvironment
import ai.onnxruntime.OrtSession
import org.pocketbert.qa.BundleException
import org.pocketbert.qa.BundleManifest
import org.pocketbert.qa.Engine
import org.pocketbert.qa.OrtThreads
import org.pocketbert.qa.QaModel
import java.io.File
import java.nio.LongBuffer

/**
 * The only place the app touches ONNX Runtime (com.microsoft.onnxruntime:onnxruntime-android): a
 * CPU session on the bundle's model.onnx, fed by name every input the manifest lists (int64 of
 * shape (1, length): input_ids, attention_mask and, for BERT, token_type_ids), returning the
 * manifest's two outputs (start_logits, end_logits). [threads] > 0 sets the intra-op thread
 * count (SessionOptions.setIntraOpNumThreads); 0 leaves ONNX Runtime's default (OrtThreads).
 * Graph optimizations stay at the session default, ORT_ENABLE_ALL, as on the desktop.
 */
class OnnxRuntimeModel(
    modelPath: String,
    private val inputNames: List<String>,
    private val outputNames: List<String>,
    threads: Int,
) : QaModel {
    private val env: OrtEnvironment = OrtEnvironment.getEnvironment()
    private val options = OrtSession.SessionOptions().apply { if (threads > 0) setIntraOpNumThreads(threads) }
    private val session: OrtSession = try {
        env.createSession(modelPath, options)
    } catch (e: Exception) {
        options.close()
        throw e
    }

    init {
        require(outputNames.size >= 2) { "the manifest lists ${outputNames.size} outputs; a QA bundle has start and end logits" }
    }

    override fun run(inputs: Map<String, LongArray>, length: Int): Pair<FloatArray, FloatArray> {
        val shape = longArrayOf(1, length.toLong())
        val feeds = LinkedHashMap<String, OnnxTensor>()
        try {
            for (name in inputNames) feeds[name] = OnnxTensor.createTensor(env, LongBuffer.wrap(inputs.getValue(name)), shape)
            session.run(feeds).use { result ->
                fun logits(name: String): FloatArray {
                    val value = result.get(name).orElseThrow { IllegalStateException("the model has no output '$name'") }
                    val buf = (value as? OnnxTensor)?.floatBuffer ?: error("output '$name' is not a float tensor")
                    return FloatArray(buf.remaining()).also { buf.get(it) }
                }
                return logits(outputNames[0]) to logits(outputNames[1])
            }
        } finally {
            feeds.values.forEach { it.close() }
        }
    }

    override fun close() {
        session.close()
        options.close()
    }
}

/** ONNX bundles (`pocketbert export --target onnx`, model.onnx) on ONNX Runtime's CPU provider. */
object OnnxRuntimeEngine : Engine {
    override val runtime = "onnx"
    override val threadsRule = OrtThreads.RULE
    override fun threadsEffective(requested: Int, processors: Int) = OrtThreads.effective(requested, processors)
    override fun load(dir: File, manifest: BundleManifest, threads: Int): QaModel {
        val odd = manifest.inputNames.zip(manifest.inputDtypes).filter { it.second != "int64" }
        if (odd.isNotEmpty()) throw BundleException("$dir: inputs ${odd.joinToString { "${it.first} (${it.second})" }} are not int64; the app feeds int64 token ids")
        return OnnxRuntimeModel(File(dir, manifest.modelFile).path, manifest.inputNames, manifest.outputNames, threads)
    }
}

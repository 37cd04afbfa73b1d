package org.pocketbert.demo

import org.pocketbert.qa.BundleManifest
import org.pocketbert.qa.Engine
import org.pocketbert.qa.ExecuTorchThreads
import org.pocketbert.qa.QaModel
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import java.io.File

/**
 * The only place the app touches ExecuTorch: load a .pte and run `forward` on one window.
 * Inputs go in the manifest's order, int64 of shape (1, length); outputs are
 * (start_logits, end_logits) float32 of shape (1, length).
 */
class ExecuTorchModel(modelPath: String, private val inputNames: List<String>, threads: Int) : QaModel {
    private val module: Module = Module.load(modelPath, Module.LOAD_MODE_MMAP, threads)

    init {
        module.loadMethod("forward") // load now, so the first answer does not pay for it
    }

    override fun run(inputs: Map<String, LongArray>, length: Int): Pair<FloatArray, FloatArray> {
        val shape = longArrayOf(1, length.toLong())
        val args = inputNames.map { EValue.from(Tensor.fromBlob(inputs.getValue(it), shape)) }
        val out = module.forward(*args.toTypedArray())
        check(out.size >= 2) { "the model returned ${out.size} outputs; a QA bundle returns start and end logits" }
        return out[0].toTensor().dataAsFloatArray to out[1].toTensor().dataAsFloatArray
    }

    override fun close() = module.destroy()
}

/** ExecuTorch bundles (`pocketbert export --target executorch`, model.pte) on XNNPACK. */
object ExecuTorchEngine : Engine {
    override val runtime = "executorch"
    override val threadsRule = ExecuTorchThreads.RULE
    override fun threadsEffective(requested: Int, processors: Int) = ExecuTorchThreads.effective(requested, processors)
    override fun load(dir: File, manifest: BundleManifest, threads: Int): QaModel =
        ExecuTorchModel(File(dir, manifest.modelFile).path, manifest.inputNames, threads)
}

package org.pytorch.executorch

import java.io.Closeable
import org.pytorch.executorch.annotations.Experimental

/**
 * executorch-android 1.4.1 `Module` (Kotlin, not the old Java API): built by `Module.load`
 * (`@JvmOverloads`, numThreads 0 = the runtime's default: cpuinfo processors / 2 in
 * extension/android/jni/jni_layer.cpp); `loadMethod` returns Unit and throws
 * [ExecutorchRuntimeException] on failure; Closeable (`close()` = `destroy()`).
 */
@Experimental
open class Module private constructor(moduleAbsolutePath: String, loadMode: Int, numThreads: Int) : Closeable {
    open fun forward(vararg inputs: EValue): Array<EValue> = stub()
    open fun execute(methodName: String, vararg inputs: EValue): Array<EValue> = stub()
    open fun loadMethod(methodName: String): Unit = stub()
    open fun getMethods(): Array<String> = stub()
    open fun getMethodMetadata(name: String): MethodMetadata = stub()
    open fun readLogBuffer(): Array<String>? = stub()
    @Experimental open fun etdump(): Boolean = stub()
    @Experimental open fun etdump(outputPath: String): Boolean = stub()
    open fun destroy(): Unit = stub()
    override fun close(): Unit = stub()

    companion object {
        const val LOAD_MODE_FILE = 0
        const val LOAD_MODE_MMAP = 1
        const val LOAD_MODE_MMAP_USE_MLOCK = 2
        const val LOAD_MODE_MMAP_USE_MLOCK_IGNORE_ERRORS = 3

        @JvmStatic @JvmOverloads
        fun load(modelPath: String?, loadMode: Int = LOAD_MODE_FILE, numThreads: Int = 0): Module = stub()

        @JvmStatic fun readLogBufferStatic(): Array<String>? = stub()
    }
}

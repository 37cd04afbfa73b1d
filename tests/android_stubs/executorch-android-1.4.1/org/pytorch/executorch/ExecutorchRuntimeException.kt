package org.pytorch.executorch

/** executorch-android 1.4.1 `ExecutorchRuntimeException`: what a failed native call throws (a RuntimeException). */
open class ExecutorchRuntimeException(val errorCode: Int, details: String?) : RuntimeException(details) {
    fun getDetailedError(): String = stub()
}

package org.pytorch.executorch

/** executorch-android 1.4.1 `ExecuTorchRuntime`: a singleton with static queries of the native runtime. */
class ExecuTorchRuntime private constructor() {
    companion object {
        @JvmStatic fun getRuntime(): ExecuTorchRuntime = stub()
        @JvmStatic fun validateFilePath(path: String?, description: String): Unit = stub()
        @JvmStatic fun getRegisteredOps(): Array<String> = stub()
        @JvmStatic fun getRegisteredBackends(): Array<String> = stub()
    }
}

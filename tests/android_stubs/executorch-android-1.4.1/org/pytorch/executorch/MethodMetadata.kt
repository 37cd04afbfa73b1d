package org.pytorch.executorch

/** executorch-android 1.4.1 `MethodMetadata`: a method's name and the backends it uses. */
class MethodMetadata internal constructor(val name: String, val backends: Array<String>)

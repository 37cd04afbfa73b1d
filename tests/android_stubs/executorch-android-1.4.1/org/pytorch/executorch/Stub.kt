package org.pytorch.executorch

// Declarations of executorch-android 1.4.1's public Kotlin API for compile checks; nothing runs.
internal fun stub(): Nothing = throw UnsupportedOperationException("executorch-android API stub: compile-time only")

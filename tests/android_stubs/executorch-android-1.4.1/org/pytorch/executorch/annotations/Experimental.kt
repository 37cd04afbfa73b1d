package org.pytorch.executorch.annotations

/** Stand-in for executorch-android 1.4.1's marker annotation (declaration only). */
@Retention(AnnotationRetention.BINARY)
annotation class Experimental

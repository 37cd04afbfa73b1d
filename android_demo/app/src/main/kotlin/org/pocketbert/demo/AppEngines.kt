package org.pocketbert.demo

import org.pocketbert.qa.Engine

/** The runtimes this app runs; each bundle gets the one its manifest names (qa-core's Engines.pick). */
object AppEngines {
    val all: List<Engine> = listOf(ExecuTorchEngine, OnnxRuntimeEngine)
}

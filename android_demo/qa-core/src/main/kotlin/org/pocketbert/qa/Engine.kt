package org.pocketbert.qa

import java.io.File

/**
 * A runtime the app runs bundles with (the seam between qa-core and the Android layer): the app
 * has one per runtime (ExecuTorchEngine, OnnxRuntimeEngine in app/), and each bundle is run by
 * the one its manifest names (`target`, written by `pocketbert export --target NAME`), which is
 * also the record's `runtime`. qa-core keeps the runtime-independent facts (thread rules); the
 * engines keep the runtime calls.
 */
interface Engine {
    /** The manifest's `target` this engine runs, and the record's `runtime` ("executorch", "onnx"). */
    val runtime: String

    /** How [threadsEffective] is worked out, for the record's notes (the runtime's own rule). */
    val threadsRule: String

    /** The CPU threads the runtime really uses when asked for [requested] (0: its default). */
    fun threadsEffective(requested: Int, processors: Int): Int

    /** Open the bundle's model ([dir] holds the manifest's model_file) with [threads] CPU threads (0: the default). */
    fun load(dir: File, manifest: BundleManifest, threads: Int): QaModel
}

object Engines {
    /** The engine for [manifest]'s runtime, or one BundleException listing the runtimes the app runs. */
    fun pick(engines: List<Engine>, manifest: BundleManifest, where: String = "the bundle"): Engine =
        engines.firstOrNull { it.runtime == manifest.target } ?: throw BundleException(
            "$where is a '${manifest.target}' bundle; the app runs ${engines.joinToString(", ") { it.runtime }} " +
                "bundles (pocketbert export --target ${engines.joinToString("|") { it.runtime }})")
}

/**
 * The thread count ONNX Runtime 1.32 really uses for SessionOptions.setIntraOpNumThreads(n): n
 * when n > 0 (the calling thread is one of them); not set (0) = its default, one thread per core
 * as cpuinfo counts cores (core/util/thread_utils.cc CreateThreadPoolHelper with
 * core/platform/posix/env.cc GetDefaultThreadAffinities: cpuinfo_get_cores_count()). Android
 * phones have no SMT, so that is every processor, little cores included.
 */
object OrtThreads {
    const val RULE = "ONNX Runtime 1.32 (thread_utils.cc, posix env.cc): intra-op threads if not 0, else one per core (processors)"

    fun effective(requested: Int, processors: Int): Int = if (requested > 0) requested else maxOf(processors, 1)
}

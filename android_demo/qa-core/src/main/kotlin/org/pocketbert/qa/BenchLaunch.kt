package org.pocketbert.qa

import java.io.File

/**
 * Where the benchmark may read and write on the device: the app's own files folder and the folder
 * `adb push` fills ([PUSHED_ROOT]); any other path in an intent extra is refused. Paths are device
 * paths (strings); [fs] turns one into a File (the identity on a phone; the fake phone in
 * tests/fake_adb.py maps them under its folder).
 */
class DevicePaths(val filesDir: String, private val fs: (String) -> File = ::File, extraRoots: List<String> = emptyList()) {
    private val roots = listOf(filesDir.trimEnd('/'), PUSHED_ROOT) + extraRoots.map { it.trimEnd('/') }

    /** [spec] (absolute, or relative to the files folder) as a File, if it stays inside the allowed roots. */
    fun resolve(spec: String, what: String): File {
        require(spec.isNotBlank()) { "$what: empty path" }
        val path = if (spec.startsWith("/")) spec else "${filesDir.trimEnd('/')}/$spec"
        val parts = path.split('/').filter { it.isNotEmpty() && it != "." }
        require(".." !in parts) { "$what '$spec': '..' is not allowed in a path" }
        val clean = "/" + parts.joinToString("/")
        require(roots.any { clean == it || clean.startsWith("$it/") }) {
            "$what '$spec' is outside the folders the benchmark may read (${roots.joinToString(" and ")})"
        }
        return fs(clean)
    }

    companion object {
        /** Where the host pushes bundles and workloads (BENCHMARK_PROTOCOL.md). */
        const val PUSHED_ROOT = "/data/local/tmp/pocketbert"
    }
}

/**
 * The thread count ExecuTorch 1.4.1 really uses for `Module.load(path, mode, threads)`:
 * extension/android/jni/jni_layer.cpp takes `threads` when it is not 0, else
 * `cpuinfo_get_processors_count() / 2` (all processors, big and little alike, halved); when that
 * is 0 (a 1-processor device) the thread pool is left at its own size, the processor count.
 */
object ExecuTorchThreads {
    const val RULE = "ExecuTorch 1.4.1 (jni_layer.cpp): threads if not 0, else processors / 2"

    fun effective(requested: Int, processors: Int): Int = when {
        requested > 0 -> requested
        processors / 2 > 0 -> processors / 2
        else -> maxOf(processors, 1)
    }

    /** Processors as cpuinfo counts them: the `present` CPU list (e.g. "0-7"), else the JVM's count. */
    fun processors(presentList: String?): Int {
        val n = presentList?.trim()?.split(',')?.filter { it.isNotBlank() }?.sumOf { r ->
            val (a, b) = if ('-' in r) r.split('-').map { it.trim().toInt() } else listOf(r.trim().toInt(), r.trim().toInt())
            b - a + 1
        }
        return if (n != null && n > 0) n else Runtime.getRuntime().availableProcessors()
    }
}

/**
 * The benchmark intent, from its extras to the record on disk: what BenchmarkActivity runs on a
 * phone and what the fake phone's JVM runs in the adb tests, so both execute the same code.
 * Extras are the intent's (`--es` strings, `--ei` ints; BENCHMARK_PROTOCOL.md).
 */
object BenchLaunch {
    const val RESULT_DIR = "bench"

    /** The record's file: RESULT_DIR/NAME (default files/bench), NAME a plain file name (default record.json). */
    fun resultFile(extras: Map<String, Any?>, paths: DevicePaths, resultDir: String = RESULT_DIR): Pair<File, String?> {
        val requested = extras["result"] as? String ?: "record.json"
        val plain = requested.length in 1..200 && '/' !in requested && !requested.startsWith(".")
        val name = if (plain) requested else "record.json"
        val problem = if (plain) null else "result must be a plain file name, got '$requested'"
        return paths.resolve("$resultDir/$name", "result") to problem
    }

    fun config(extras: Map<String, Any?>): BenchConfig {
        fun int(key: String): Int? = when (val v = extras[key]) {
            null -> null
            is Int -> v
            is Long, is Short, is Byte -> (v as Number).toLong().let { n ->
                if (n in Int.MIN_VALUE..Int.MAX_VALUE) n.toInt()
                else throw IllegalArgumentException("extra '$key' is out of range: $n")
            }
            else -> throw IllegalArgumentException("extra '$key' must be an int (am start --ei $key N), got " +
                "${v.javaClass.simpleName} '${v.toString().take(60)}'")
        }
        fun str(key: String): String? = when (val v = extras[key]) {
            null -> null
            is String -> v
            else -> throw IllegalArgumentException("extra '$key' must be a string (am start --es $key VALUE), got " +
                "${v.javaClass.simpleName} '${v.toString().take(60)}'")
        }
        return BenchConfig(
            bundle = str("bundle") ?: "", iterations = int("iterations") ?: 1, warmup = int("warmup") ?: 3,
            threads = int("threads") ?: 0, shape = str("shape") ?: "dynamic", seqLen = int("seq_len"),
            docStride = int("doc_stride"), limit = int("limit"), runId = str("run_id"),
        )
    }

    /**
     * A bundle folder: a path (absolute, or relative to the files folder) holding manifest.json,
     * else the name of a bundle packaged in the app ([packaged]: copies it out and returns its
     * folder, or null when there is no such bundle).
     */
    fun resolveBundle(spec: String, paths: DevicePaths, packaged: (String) -> File?, known: () -> List<String>): File {
        val asPath = paths.resolve(spec, "bundle")
        if (File(asPath, BundleManifest.FILE).isFile) return asPath
        if ('/' !in spec) packaged(spec)?.let { return it }
        throw IllegalArgumentException("no bundle '$spec': not a folder with manifest.json and not one of the " +
            "packaged bundles (${known().joinToString().ifEmpty { "none: run pocketbert android bundle" }})")
    }

    /**
     * Run the benchmark the extras ask for and write its record (atomically) to files/bench/NAME,
     * with the engine of [engines] the bundle's manifest names (its `target`: ExecuTorch, ONNX Runtime).
     * Every failure is a record too (status "failed"), so the host never waits for nothing.
     */
    fun run(
        extras: Map<String, Any?>,
        paths: DevicePaths,
        machine: Map<String, Any?>,
        versions: Map<String, Any?>,
        processors: Int,
        packaged: (String) -> File? = { null },
        known: () -> List<String> = { emptyList() },
        progress: (String) -> Unit = {},
        resultDir: String = RESULT_DIR,
        engines: List<Engine>,
    ): Pair<Map<String, Any?>, File> {
        val (out, badResult) = resultFile(extras, paths, resultDir)
        val runId = (extras["run_id"] as? String)?.take(BenchConfig.MAX_RUN_ID)
        val record = try {
            if (badResult != null) throw IllegalArgumentException(badResult)
            val cfg = config(extras)
            cfg.validate()
            progress("START $cfg")
            val bundleDir = if (cfg.bundle.isEmpty()) null else resolveBundle(cfg.bundle, paths, packaged, known)
            val workload = (extras["workload"] as? String)?.let { spec ->
                val f = paths.resolve(spec, "workload")
                val text = try { f.readText() } catch (e: Exception) {
                    throw IllegalArgumentException("cannot read workload $spec (${e.message}); see BENCHMARK_PROTOCOL.md")
                }
                Workload.parse(text, spec)
            }
            var engine: Engine? = null // the bundle's runtime picks it (an unknown one: a failed record naming those the app runs)
            val rec = Benchmark(progress = progress).run(cfg, bundleDir, workload, machine, versions) { dir, m, threads ->
                Engines.pick(engines, m, dir.path).also { engine = it }.load(dir, m, threads)
            }
            rec.toMutableMap().apply {
                engine?.let { e ->
                    put("threads_effective", e.threadsEffective(cfg.threads, processors))
                    @Suppress("UNCHECKED_CAST")
                    (get("notes") as? MutableMap<String, Any?>)?.put("threads_effective", "${e.threadsRule}; $processors processors")
                }
            }
        } catch (e: Exception) { // a bad extra or path: still a record
            Benchmark.failure(e.message ?: e.javaClass.simpleName, runId, machine, versions)
        }
        Benchmark.writeRecord(record, out)
        progress(if (record["status"] == "ok") "DONE $out" else "FAILED ${record["reason"]}")
        return record to out
    }
}

/**
 * The device-farm run (Firebase Test Lab's Game Loop, the instrumentation test for AWS Device Farm
 * and FTL): the benchmark of the first bundle packaged in the APK on the built-in workload, its
 * record written to [resultDir] (the app's external files folder + /pocketbert, which a farm pulls:
 * `--directories-to-pull` on FTL, `adb pull` into $DEVICEFARM_LOG_DIR on AWS). Farms cannot pass
 * extras, so everything comes from the APK. Both farm entry points call this.
 */
object FarmLaunch {
    const val SUBDIR = "pocketbert"
    const val RESULT = "record.json"

    fun resultDir(externalFilesDir: String): String = "${externalFilesDir.trimEnd('/')}/$SUBDIR"

    /** The extras a farm run stands for (a failed record names the fix when no bundle is packaged). */
    fun extras(packaged: List<String>, runId: String, iterations: Int = 3): Map<String, Any?> = mapOf(
        "bundle" to (packaged.firstOrNull() ?: "(no bundle packaged in the APK)"), "result" to RESULT,
        "run_id" to runId, "iterations" to iterations)
}

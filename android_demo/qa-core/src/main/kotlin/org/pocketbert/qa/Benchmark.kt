package org.pocketbert.qa

import java.io.File
import java.time.Instant
import java.time.ZoneOffset
import java.time.format.DateTimeFormatter
import java.time.temporal.ChronoUnit

/** The benchmark's knobs, from the intent extras (android_demo/BENCHMARK_PROTOCOL.md). */
data class BenchConfig(
    val bundle: String, // where the bundle came from (recorded as is)
    val iterations: Int = 1, // timed passes over all items
    val warmup: Int = 3, // untimed model calls after the first inference
    val threads: Int = 0, // the runtime's CPU threads; 0 = its default
    val shape: String = "dynamic", // dynamic (real length) | fixed (padded to seq_len)
    val seqLen: Int? = null, // window length; default the manifest's seq_len
    val docStride: Int? = null, // default seqLen / 3
    val limit: Int? = null, // first N items
    val runId: String? = null,
) {
    fun validate() {
        fun inRange(name: String, v: Int?, range: IntRange, why: String = "") =
            require(v == null || v in range) { "$name must be in ${range.first}..${range.last}$why, got $v" }
        inRange("iterations", iterations, 1..MAX_ITERATIONS)
        inRange("warmup", warmup, 0..MAX_WARMUP)
        inRange("threads", threads, 0..MAX_THREADS, " (0 = the runtime's default)")
        require(shape == "dynamic" || shape == "fixed") { "shape must be dynamic or fixed, got '$shape'" }
        inRange("seq_len", seqLen, 4..MAX_SEQ_LEN, " (and at most the bundle's seq_len)")
        inRange("doc_stride", docStride, 0..MAX_SEQ_LEN)
        inRange("limit", limit, 1..MAX_ITEMS)
        require(runId == null || runId.length in 1..MAX_RUN_ID) { "run_id must be 1..$MAX_RUN_ID characters, got ${runId?.length}" }
    }

    companion object {
        // Upper bounds of the intent's extras: far above any real run, low enough that a typo
        // (or another app's intent) cannot ask for a run that never ends or a window that cannot be allocated.
        const val MAX_ITERATIONS = 10_000
        const val MAX_WARMUP = 10_000
        const val MAX_THREADS = 256 // the largest Android SoCs have 12 cores
        const val MAX_SEQ_LEN = 8192 // the app's bundles are 512 at most (the model's position table)
        const val MAX_ITEMS = 1_000_000
        const val MAX_RUN_ID = 200
    }
}

const val RECORD_SCHEMA = "pocketbert-bench/1"

/**
 * One benchmark run, the phone's side of `pocketbert bench`: load (timed) -> first inference
 * (timed apart) -> warm-up -> per item and pass: tokenize + window (timed), the model over the
 * item's windows (timed), span search (timed). Returns the record (schema pocketbert-bench/1, raw
 * samples only; the host derives the statistics). Any failure is a record with status "failed".
 *
 * [loadModel] opens the model (the Android layer: the bundle's engine, e.g. ExecuTorch Module.load + loadMethod).
 * [machine] and [versions] are facts from the device. [rssMb] reads the process's current and
 * peak resident memory (VmRSS, VmHWM) or nulls where unavailable.
 */
class Benchmark(
    private val clock: () -> Long = System::nanoTime,
    private val rssMb: () -> Pair<Double?, Double?> = ::procRssMb,
    private val progress: (String) -> Unit = {},
) {
    fun run(
        cfg: BenchConfig,
        bundleDir: File?,
        workload: Workload?,
        machine: Map<String, Any?>,
        versions: Map<String, Any?>,
        loadModel: (File, BundleManifest, Int) -> QaModel,
    ): Map<String, Any?> {
        val rec = baseRecord(cfg.runId, machine, versions)
        rec["threads"] = cfg.threads
        rec["warmup"] = cfg.warmup
        rec["shape"] = cfg.shape
        rec["bundle"] = cfg.bundle
        rec["notes"] = linkedMapOf<String, Any?>(
            "source" to "org.pocketbert.demo BenchmarkActivity",
            "iterations" to cfg.iterations,
            "tokenize" to "on the device (qa-core WordPiece), timed for every item and pass",
        )
        try {
            cfg.validate()
            if (bundleDir == null) throw BundleException("no bundle: pass --es bundle PATH_OR_NAME")
            val w = workload ?: Workload.builtin()
            rec["workload"] = w.name
            rec["workload_source"] = w.source
            val items = if (cfg.limit != null) w.items.take(cfg.limit) else w.items
            require(items.isNotEmpty()) { "workload ${w.name} has no items" }
            runMeasured(cfg, bundleDir, items, rec, loadModel)
        } catch (e: Throwable) {
            if (e is InterruptedException) throw e
            rec["status"] = "failed"
            rec["reason"] = (e.message ?: e.javaClass.simpleName).lineSequence().first().take(300)
        }
        return rec
    }

    private fun runMeasured(
        cfg: BenchConfig,
        bundleDir: File,
        items: List<WorkloadItem>,
        rec: MutableMap<String, Any?>,
        loadModel: (File, BundleManifest, Int) -> QaModel,
    ) {
        val engine = QaEngine.open(bundleDir, cfg.seqLen, cfg.docStride, fixedShape = cfg.shape == "fixed")
        val m = engine.manifest
        if (cfg.shape == "dynamic" && !m.dynamicSeq) throw BundleException("bundle has fixed sequence lengths only: use --es shape fixed")
        rec.putAll(mapOf("model" to m.model, "model_type" to m.modelType, "task" to m.task, "runtime" to m.target, "precision" to m.precision,
            "seq_len" to engine.seqLen, "parameters" to m.parameters,
            "model_file_bytes" to File(bundleDir, m.modelFile).length(), "git_revision" to (m.gitRevision ?: "unknown")))
        @Suppress("UNCHECKED_CAST")
        (rec["notes"] as MutableMap<String, Any?>)["doc_stride"] = engine.docStride
        // Tokenize once up front: a question the model cannot take fails the run before any timing.
        val prepared = items.map { it to engine.windows(it.question, it.context, it.maxTokens) }
        val (baseline, _) = rssMb()

        var t0 = clock()
        val model = loadModel(bundleDir, m, cfg.threads)
        val loadMs = (clock() - t0) / 1e6
        model.use {
            val firstFeeds = engine.feedsOf(prepared[0].second[0])
            val firstLen = firstFeeds.getValue(m.inputNames[0]).size
            t0 = clock()
            model.run(firstFeeds, firstLen)
            val firstMs = (clock() - t0) / 1e6
            for (k in 0 until cfg.warmup) {
                val f = engine.feedsOf(prepared[k % prepared.size].second[0])
                model.run(f, f.getValue(m.inputNames[0]).size)
            }
            val ids = ArrayList<String>()
            val lat = ArrayList<Double>()
            val tok = ArrayList<Double>()
            val post = ArrayList<Double>()
            val answers = ArrayList<String>()
            var real = 0L
            var fed = 0L
            var calls = 0
            val total = cfg.iterations * items.size
            for (pass in 0 until cfg.iterations) {
                for ((item, _) in prepared) {
                    if (Thread.interrupted()) throw InterruptedException("benchmark stopped")
                    val a = engine.answer(model, item.question, item.context, item.maxTokens)
                    ids.add(item.id); lat.add(a.modelMs); tok.add(a.tokenizeMs); post.add(a.postprocessMs)
                    real += a.tokens; fed += a.tokensFed; calls += a.windows
                    if (answers.size < 5) answers.add(a.text.take(80))
                    if (ids.size % 10 == 0 || ids.size == total) progress("PROGRESS ${ids.size}/$total")
                }
            }
            val (rss, peak) = rssMb()
            rec.putAll(mapOf(
                "load_ms" to loadMs, "first_inference_ms" to firstMs,
                "n_items" to ids.size, "n_model_calls" to calls, "item_ids" to ids,
                "latency_ms" to lat, "tokenize_ms" to tok, "postprocess_ms" to post,
                "tokens" to mapOf("real" to real, "fed" to fed),
                "peak_rss_mb" to (peak ?: rss), "baseline_rss_mb" to baseline,
                "runtime_rss_mb" to if ((peak ?: rss) != null && baseline != null) (peak ?: rss)!! - baseline else null,
                "answers_sample" to answers,
            ))
        }
    }

    companion object {
        /**
         * The fields every record has (those `pocketbert.contracts.Record` requires included), so
         * even a run that failed before it knew its model is a record the host can read.
         */
        fun baseRecord(runId: String?, machine: Map<String, Any?>, versions: Map<String, Any?>): LinkedHashMap<String, Any?> =
            linkedMapOf(
                "schema" to RECORD_SCHEMA,
                "run_id" to (runId ?: DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'").withZone(ZoneOffset.UTC).format(Instant.now())),
                "status" to "ok", "reason" to "", "model" to "", "runtime" to "", "precision" to "",
                "workload" to "", "shape" to "", "task" to "question-answering", "threads" to null,
                "threads_effective" to null, "warmup" to 0, "batch_size" to 1, "gemm_peak_gflops" to null,
                "machine" to machine, "versions" to versions,
                "created_utc" to Instant.now().truncatedTo(ChronoUnit.SECONDS).toString().replace("Z", "+00:00"),
            )

        /** A failed record for an error outside [run] (a bad extra, an unreadable file). */
        fun failure(reason: String, runId: String?, machine: Map<String, Any?>, versions: Map<String, Any?>): Map<String, Any?> =
            baseRecord(runId, machine, versions).apply {
                put("status", "failed")
                put("reason", reason.lineSequence().first().take(300))
            }

        /** Write [record] to [file] atomically: a reader sees the whole record or nothing. */
        fun writeRecord(record: Map<String, Any?>, file: File) {
            file.parentFile?.mkdirs()
            val tmp = File(file.path + ".tmp")
            tmp.writeText(Json.write(record, indent = 1) + "\n")
            if (!tmp.renameTo(file)) {
                file.delete()
                check(tmp.renameTo(file)) { "cannot move $tmp to $file" }
            }
        }

        /** (VmRSS, VmHWM) of this process in MiB from /proc/self/status, nulls elsewhere. */
        fun procRssMb(): Pair<Double?, Double?> {
            val f = File("/proc/self/status")
            if (!f.canRead()) return null to null
            var rss: Double? = null
            var hwm: Double? = null
            for (line in f.readLines()) {
                val kb = line.split(Regex("\\s+")).getOrNull(1)?.toDoubleOrNull() ?: continue
                if (line.startsWith("VmRSS:")) rss = kb / 1024
                if (line.startsWith("VmHWM:")) hwm = kb / 1024
            }
            return rss to hwm
        }
    }
}

package org.pocketbert.demo

import android.app.Activity
import android.os.Bundle
import android.util.Log
import android.widget.TextView
import org.pocketbert.qa.BenchConfig
import org.pocketbert.qa.Benchmark
import org.pocketbert.qa.Workload
import java.io.File

/**
 * The benchmark entry point for `pocketbert bench --device adb://SERIAL`, driven by intent extras
 * (android_demo/BENCHMARK_PROTOCOL.md). Runs qa-core's Benchmark on a background thread with an
 * ExecuTorch model, writes the record atomically to files/bench/RESULT, and finishes. Every
 * failure is a record too (status "failed"), so the host never waits for nothing.
 */
class BenchmarkActivity : Activity() {
    private var worker: Thread? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val status = TextView(this).apply { text = "pocketbert benchmark running…"; setPadding(32, 32, 32, 32) }
        setContentView(status)
        val x = intent.extras ?: Bundle()
        val requested = x.getString("result") ?: "record.json"
        val resultName = if (requested.contains('/') || requested.startsWith(".")) "record.json" else requested
        val out = File(filesDir, "bench/$resultName")
        if (savedInstanceState != null) return // recreated (e.g. rotated): the first run is still going
        fun intExtra(key: String): Int? = if (x.containsKey(key)) x.getInt(key) else null
        worker = Thread {
            val record = try {
                require(resultName == requested) { "result must be a plain file name, got '$requested'" }
                val cfg = BenchConfig(
                    bundle = x.getString("bundle") ?: "", iterations = intExtra("iterations") ?: 1,
                    warmup = intExtra("warmup") ?: 3, threads = intExtra("threads") ?: 0,
                    shape = x.getString("shape") ?: "dynamic", seqLen = intExtra("seq_len"),
                    docStride = intExtra("doc_stride"), limit = intExtra("limit"), runId = x.getString("run_id"),
                )
                Log.i(TAG, "START $cfg")
                val bundleDir = if (cfg.bundle.isEmpty()) null else Bundles.resolve(this, cfg.bundle)
                val workload = x.getString("workload")?.let { spec ->
                    val f = if (spec.startsWith("/")) File(spec) else File(filesDir, spec)
                    val text = try { f.readText() } catch (e: Exception) {
                        throw IllegalArgumentException("cannot read workload $f (${e.message}); see BENCHMARK_PROTOCOL.md")
                    }
                    Workload.parse(text, f.path)
                }
                Benchmark(progress = { Log.i(TAG, it) }).run(cfg, bundleDir, workload, DeviceInfo.machine(this),
                    DeviceInfo.versions(this)) { dir, manifest, threads ->
                    ExecuTorchModel(File(dir, manifest.modelFile).path, manifest.inputNames, threads)
                }
            } catch (e: Exception) { // a bad extra or bundle: still a record, so the host is not left waiting
                Benchmark.failure(e.message ?: e.javaClass.simpleName, x.getString("run_id"),
                    DeviceInfo.machine(this), DeviceInfo.versions(this))
            }
            Benchmark.writeRecord(record, out)
            Log.i(TAG, if (record["status"] == "ok") "DONE ${out.path}" else "FAILED ${record["reason"]}")
            runOnUiThread { finish() }
        }.apply { name = "pocketbert-bench"; start() }
    }

    override fun onDestroy() {
        worker?.interrupt() // am force-stop kills the process anyway; a back press stops the loop
        super.onDestroy()
    }

    companion object {
        const val TAG = "PocketbertBench"
    }
}

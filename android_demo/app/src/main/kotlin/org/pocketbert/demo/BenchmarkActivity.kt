package org.pocketbert.demo

import android.app.Activity
import android.os.Bundle
import android.util.Log
import android.widget.TextView

/**
 * The benchmark entry point for `pocketbert bench --device adb://SERIAL`, driven by intent extras
 * (android_demo/BENCHMARK_PROTOCOL.md). Declared in debug builds only (src/debug/AndroidManifest.xml),
 * guarded by android.permission.DUMP. Everything but the Android calls is BenchEntry (plain Kotlin,
 * run by the JVM tests): the extras, the device facts, the record written to files/bench/RESULT.
 */
class BenchmarkActivity : Activity() {
    private var worker: Thread? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(TextView(this).apply { text = "pocketbert benchmark running…"; setPadding(32, 32, 32, 32) })
        if (savedInstanceState != null) return // recreated (e.g. rotated): the first run is still going
        val x = intent?.extras
        @Suppress("DEPRECATION") // Bundle.get(key): the typed value of any extra (--es string, --ei int)
        val extras = BenchEntry.extras(x?.keySet()) { x?.get(it) }
        worker = Thread {
            BenchEntry.runIntent(extras, filesDir, Bundles.store(this), DeviceInfo.facts(this), AppEngines.all) { Log.i(TAG, it) }
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

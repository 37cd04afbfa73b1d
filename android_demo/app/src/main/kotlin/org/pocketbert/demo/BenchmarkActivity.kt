package org.pocketbert.demo

import android.app.Activity
import android.os.Bundle
import android.util.Log
import android.widget.TextView
import org.pocketbert.qa.BenchLaunch
import org.pocketbert.qa.DevicePaths

/**
 * The benchmark entry point for `pocketbert bench --device adb://SERIAL`, driven by intent extras
 * (android_demo/BENCHMARK_PROTOCOL.md). Declared in debug builds only (src/debug/AndroidManifest.xml).
 * Everything but the Android calls is qa-core's BenchLaunch (extras, allowed paths, the benchmark,
 * the record written atomically to files/bench/RESULT), the code the adb tests run on the JVM; this
 * class adds the thread it runs on, the engines (ExecuTorch, ONNX Runtime: the bundle's manifest
 * picks one) and the device facts.
 */
class BenchmarkActivity : Activity() {
    private var worker: Thread? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val status = TextView(this).apply { text = "pocketbert benchmark running…"; setPadding(32, 32, 32, 32) }
        setContentView(status)
        if (savedInstanceState != null) return // recreated (e.g. rotated): the first run is still going
        val x = intent.extras ?: Bundle()
        @Suppress("DEPRECATION") // Bundle.get(key): the typed value of any extra (--es string, --ei int)
        val extras: Map<String, Any?> = x.keySet().associateWith { x.get(it) }
        worker = Thread {
            BenchLaunch.run(
                extras, DevicePaths(filesDir.path), DeviceInfo.machine(this), DeviceInfo.versions(this),
                DeviceInfo.processors(), packaged = { Bundles.packagedDir(this, it) },
                known = { Bundles.packaged(this) }, progress = { Log.i(TAG, it) }, engines = AppEngines.all,
            )
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

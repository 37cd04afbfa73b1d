package org.pocketbert.demo

import android.content.Context
import android.util.Log
import java.io.File

/**
 * One device-farm benchmark (BenchEntry.runFarm -> qa-core's FarmLaunch): the first packaged
 * bundle, the built-in workload, the record written to <external files>/pocketbert/record.json,
 * where the farm commands in android_demo/README.md pull it from. Called by GameLoopActivity
 * (Firebase Test Lab game loop) and by the instrumentation test FarmBenchmarkTest.
 */
object FarmRun {
    fun run(context: Context, runId: String): Pair<Map<String, Any?>, File> =
        BenchEntry.runFarm(runId, context.filesDir, context.getExternalFilesDir(null)?.path, Bundles.store(context),
            DeviceInfo.facts(context), AppEngines.all) { Log.i(BenchmarkActivity.TAG, it) }
}

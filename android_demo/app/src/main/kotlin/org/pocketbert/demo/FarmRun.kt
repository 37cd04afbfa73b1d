package org.pocketbert.demo

import android.content.Context
import android.util.Log
import org.pocketbert.qa.BenchLaunch
import org.pocketbert.qa.DevicePaths
import org.pocketbert.qa.FarmLaunch
import java.io.File

/**
 * One device-farm benchmark (qa-core's FarmLaunch): the first packaged bundle, the built-in
 * workload, the record written to <external files>/pocketbert/record.json, where the farm
 * commands in android_demo/README.md pull it from. Called by GameLoopActivity (Firebase Test Lab
 * game loop) and by the instrumentation test FarmBenchmarkTest (AWS Device Farm, FTL instrumentation).
 */
object FarmRun {
    fun run(context: Context, runId: String): Pair<Map<String, Any?>, File> {
        val external = context.getExternalFilesDir(null)?.path
            ?: throw IllegalStateException("no external files folder (shared storage not mounted)")
        val paths = DevicePaths(context.filesDir.path, extraRoots = listOf(external))
        return BenchLaunch.run(
            FarmLaunch.extras(Bundles.packaged(context), runId), paths, DeviceInfo.machine(context),
            DeviceInfo.versions(context), DeviceInfo.processors(), packaged = { Bundles.packagedDir(context, it) },
            known = { Bundles.packaged(context) }, progress = { Log.i(BenchmarkActivity.TAG, it) },
            resultDir = FarmLaunch.resultDir(external), engines = AppEngines.all,
        )
    }
}

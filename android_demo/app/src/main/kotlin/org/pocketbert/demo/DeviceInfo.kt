package org.pocketbert.demo

import android.app.ActivityManager
import android.content.Context
import android.os.Build
import org.pocketbert.qa.ExecuTorchThreads
import java.io.File

/** The device's facts as Android gives them; DeviceFacts makes the record's blocks of them. */
object DeviceInfo {
    fun facts(context: Context): Facts = Facts(
        machine = { machine(context) },
        versions = {
            DeviceFacts.versions(BuildConfig.EXECUTORCH_VERSION, BuildConfig.ONNXRUNTIME_VERSION,
                context.packageManager.getPackageInfo(context.packageName, 0).versionName)
        },
        processors = { ExecuTorchThreads.processors(read("/sys/devices/system/cpu/present")) },
    )

    private fun machine(context: Context): Map<String, Any?> {
        val build = BuildFacts(Build.DEVICE, Build.HARDWARE, Build.MANUFACTURER, Build.MODEL, Build.VERSION.SDK_INT,
            Build.VERSION.RELEASE, Build.SUPPORTED_ABIS.toList(),
            socManufacturer = if (Build.VERSION.SDK_INT >= 31) Build.SOC_MANUFACTURER else null,
            socModel = if (Build.VERSION.SDK_INT >= 31) Build.SOC_MODEL else null)
        val total = (context.getSystemService(Context.ACTIVITY_SERVICE) as? ActivityManager)?.let { am ->
            ActivityManager.MemoryInfo().also { am.getMemoryInfo(it) }.totalMem
        }
        return DeviceFacts.machine(build, read("/proc/cpuinfo"), read("/proc/loadavg"), total, Runtime.getRuntime().availableProcessors())
    }

    private fun read(path: String): String? = try { File(path).readText() } catch (e: Exception) { null }
}

package org.pocketbert.demo

import android.app.ActivityManager
import android.content.Context
import android.os.Build
import org.pocketbert.qa.ExecuTorchThreads
import java.io.File

/** The `machine` block of a benchmark record, with the field names `pocketbert bench` uses. */
object DeviceInfo {
    private val ISA = listOf("asimd", "asimddp", "asimdhp", "fphp", "sve", "sve2", "i8mm", "bf16",
        "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni")

    fun machine(context: Context): Map<String, Any?> {
        val cpuinfo = try { File("/proc/cpuinfo").readText() } catch (e: Exception) { "" }
        val flags = cpuinfo.lines().filter { it.startsWith("Features") || it.startsWith("flags") }
            .flatMap { it.substringAfter(':').trim().split(Regex("\\s+")) }.toSet()
        val hardware = cpuinfo.lines().firstOrNull { it.startsWith("Hardware") }?.substringAfter(':')?.trim()
        val soc = if (Build.VERSION.SDK_INT >= 31) "${Build.SOC_MANUFACTURER} ${Build.SOC_MODEL}" else null
        val mem = ActivityManager.MemoryInfo().also {
            (context.getSystemService(Context.ACTIVITY_SERVICE) as ActivityManager).getMemoryInfo(it)
        }
        val load = try { File("/proc/loadavg").readText().split(" ")[0].toDouble() } catch (e: Exception) { null }
        val cores = Runtime.getRuntime().availableProcessors()
        return linkedMapOf(
            "device" to "adb", "hostname" to Build.DEVICE,
            "cpu_model" to (soc ?: hardware ?: Build.HARDWARE), "arch" to (Build.SUPPORTED_ABIS.firstOrNull() ?: "?"),
            "physical_cores" to cores, "logical_cores" to cores, // Android has no SMT: one thread per core
            "isa_flags" to ISA.filter { it in flags },
            "os" to "Android ${Build.VERSION.RELEASE} (API ${Build.VERSION.SDK_INT})",
            "memory_gb" to Math.round(mem.totalMem / 1073741824.0 * 10) / 10.0,
            "load_avg_1m" to load, "env" to emptyMap<String, String>(),
            "manufacturer" to Build.MANUFACTURER, "model" to Build.MODEL, "soc" to soc,
            "abis" to Build.SUPPORTED_ABIS.toList(), "serial" to null,
        )
    }

    /** Processors as ExecuTorch's cpuinfo counts them (its default thread count is half of them). */
    fun processors(): Int = ExecuTorchThreads.processors(
        try { File("/sys/devices/system/cpu/present").readText() } catch (e: Exception) { null })

    fun versions(context: Context): Map<String, Any?> = linkedMapOf(
        "executorch-android" to BuildConfig.EXECUTORCH_VERSION,
        "onnxruntime-android" to BuildConfig.ONNXRUNTIME_VERSION,
        "app" to context.packageManager.getPackageInfo(context.packageName, 0).versionName,
    )
}

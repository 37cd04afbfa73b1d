package org.pocketbert.demo

/** What android.os.Build says about the device (DeviceInfo reads it; the JVM tests make their own). */
data class BuildFacts(
    val device: String,
    val hardware: String,
    val manufacturer: String,
    val model: String,
    val sdkInt: Int,
    val release: String,
    val abis: List<String>,
    val socManufacturer: String? = null, // Build.SOC_* exist from API 31
    val socModel: String? = null,
)

/** The `machine` and `versions` blocks of a benchmark record from the device's raw facts, field names as `pocketbert bench` writes them. */
object DeviceFacts {
    private val ISA = listOf("asimd", "asimddp", "asimdhp", "fphp", "sve", "sve2", "i8mm", "bf16",
        "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni")

    /**
     * [cpuinfo] and [loadavg]: the text of /proc/cpuinfo and /proc/loadavg (null when unreadable);
     * [totalMemBytes]: ActivityManager's total memory (null when unknown); [cores]: the processors the runtime sees.
     */
    fun machine(build: BuildFacts, cpuinfo: String?, loadavg: String?, totalMemBytes: Long?, cores: Int): Map<String, Any?> {
        val lines = cpuinfo?.lines() ?: emptyList()
        val flags = lines.filter { it.startsWith("Features") || it.startsWith("flags") }
            .flatMap { it.substringAfter(':').trim().split(Regex("\\s+")) }.toSet()
        val hardware = lines.firstOrNull { it.startsWith("Hardware") }?.substringAfter(':')?.trim()?.ifEmpty { null }
        val soc = if (build.sdkInt >= 31 && !build.socModel.isNullOrBlank()) "${build.socManufacturer ?: ""} ${build.socModel}".trim() else null
        val load = loadavg?.trim()?.split(Regex("\\s+"))?.firstOrNull()?.toDoubleOrNull()
        return linkedMapOf(
            "device" to "adb", "hostname" to build.device,
            "cpu_model" to (soc ?: hardware ?: build.hardware), "arch" to (build.abis.firstOrNull() ?: "?"),
            "physical_cores" to cores, "logical_cores" to cores, // Android has no SMT: one thread per core
            "isa_flags" to ISA.filter { it in flags },
            "os" to "Android ${build.release} (API ${build.sdkInt})",
            "memory_gb" to totalMemBytes?.takeIf { it > 0 }?.let { Math.round(it / 1073741824.0 * 10) / 10.0 },
            "load_avg_1m" to load, "env" to emptyMap<String, String>(),
            "manufacturer" to build.manufacturer, "model" to build.model, "soc" to soc,
            "abis" to build.abis, "serial" to null,
        )
    }

    /** The runtimes linked into the app (BuildConfig, from the catalog) and the app's own version. */
    fun versions(executorch: String, onnxruntime: String, app: String?): Map<String, Any?> = linkedMapOf(
        "executorch-android" to executorch, "onnxruntime-android" to onnxruntime, "app" to app,
    )

    /** The facts a record needs even when reading them fails: a record is always written. */
    fun <T> orNote(what: String, read: () -> T, fallback: (String) -> T): T = try {
        read()
    } catch (e: Exception) {
        fallback("cannot read $what: ${e.javaClass.simpleName}: ${e.message}".lineSequence().first().take(200))
    }
}

package org.pocketbert.demo

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test

class DeviceFactsTest {
    private val pixel = BuildFacts("oriole", "oriole", "Google", "Pixel 6", 34, "14", listOf("arm64-v8a", "armeabi-v7a"), "Google", "Tensor")

    @Test
    fun machineFromTheDevicesFiles() {
        val cpuinfo = "processor\t: 0\nFeatures\t: fp asimd aes asimddp i8mm bf16\nCPU part\t: 0xd46\n\nprocessor\t: 1\nFeatures\t: fp asimd\n"
        val m = DeviceFacts.machine(pixel, cpuinfo, "1.25 1.10 0.90 2/1234 5678\n", 8L * 1073741824, 8)
        assertEquals("Google Tensor", m["cpu_model"])
        assertEquals(listOf("asimd", "asimddp", "i8mm", "bf16"), m["isa_flags"])
        assertEquals(1.25, m["load_avg_1m"])
        assertEquals(8.0, m["memory_gb"])
        assertEquals("Android 14 (API 34)", m["os"])
        assertEquals("arm64-v8a", m["arch"])
    }

    @Test
    fun unreadableOrGarbledFilesAreNulls() {
        val old = pixel.copy(sdkInt = 30, socManufacturer = null, socModel = null, abis = emptyList())
        val m = DeviceFacts.machine(old, "Hardware\t: Qualcomm SM8150\nflags : avx2", "garbage", null, 4)
        assertEquals("Qualcomm SM8150", m["cpu_model"])
        assertEquals(listOf("avx2"), m["isa_flags"])
        assertEquals(null, m["load_avg_1m"])
        assertEquals(null, m["memory_gb"])
        assertEquals("?", m["arch"])
        val none = DeviceFacts.machine(old.copy(hardware = "qcom"), null, null, 0, 4)
        assertEquals("qcom", none["cpu_model"])
        assertEquals(emptyList<String>(), none["isa_flags"])
    }

    @Test
    fun versionsNameTheLinkedRuntimes() {
        assertEquals(mapOf("executorch-android" to "1.4.1", "onnxruntime-android" to "1.32.0", "app" to "0.1.0"),
            DeviceFacts.versions("1.4.1", "1.32.0", "0.1.0"))
    }
}

"""Facts about a CPU, read the same way wherever it is: this machine (bench/machine.py, the int8
choice), an SSH board and an adb phone (their /proc/cpuinfo text fetched remotely). One throttling
rule for every device. stdlib only: the benchmark worker imports this on boards."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

# ISA features that decide which kernels a runtime can use (x86 and Arm names).
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
             "asimd", "asimddp", "sve", "sve2", "i8mm", "bf16")

# Arm CPU part numbers (MIDR part, implementer 0x41) of common phone and board cores, for readable
# CPU names in device identities (adb phones, SSH boards).
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
             "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2",
             "0xd49": "Neoverse-N2", "0xd4b": "Cortex-A78C", "0xd4d": "Cortex-A715", "0xd4e": "Cortex-X3",
             "0xd4f": "Neoverse-V2", "0xd80": "Cortex-A520", "0xd81": "Cortex-A720", "0xd82": "Cortex-X4",
             "0xd85": "Cortex-X925", "0xd87": "Cortex-A725"}

HOT_C = 70.0  # CPU/SoC temperature where phones and boards commonly start throttling
RISE_C = 15.0  # a rise this large during one run is worth a warning too


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """/proc/cpuinfo (x86 and Arm layouts): CPU name(s), processor count, each processor's core
    name (Arm parts), the hardware line and ISA flags (the ones in ISA_FLAGS, in that order)."""
    names, cores, flags, hardware, n, cpu = [], {}, set(), None, 0, None
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip().lower(), val.strip()
        if key == "processor":
            n += 1
            cpu = int(val) if val.isdigit() else None
        elif key == "model name" and val not in names:
            names.append(val)
        elif key == "cpu part" and cpu is not None:
            cores[cpu] = ARM_PARTS.get(val.lower(), f"part {val}")
        elif key in ("flags", "features"):
            flags.update(val.split())
        elif key == "hardware":
            hardware = val
    parts = list(cores.values())
    if not names and parts:  # Arm: name the cores by part, big.LITTLE as e.g. 4x Cortex-A76 + 4x Cortex-A55
        names = [" + ".join(f"{parts.count(p)}x {p}" for p in dict.fromkeys(parts))]
    return {"cpu_model": " / ".join(names) or hardware or "unknown", "soc": hardware, "processors": n,
            "cores": cores, "isa_flags": [f for f in ISA_FLAGS if f in flags]}


def mem_total_gb(meminfo: str) -> float | None:
    """MemTotal of a device's /proc/meminfo text in GiB (None where absent): boards and phones alike.
    This machine's memory is psutil's (bench.machine)."""
    m = re.search(r"^MemTotal:\s+(\d+)", meminfo, flags=re.M)
    return round(int(m.group(1)) / 2**20, 1) if m else None


def _local_cpuinfo() -> dict[str, Any] | None:
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return None


def cpu_model() -> str:
    info = _local_cpuinfo()
    if info and info["cpu_model"] != "unknown":
        return info["cpu_model"]
    return platform.processor() or platform.machine()


def isa_flags() -> list[str]:
    info = _local_cpuinfo()
    return info["isa_flags"] if info else []


def physical_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def int8_cpu_facts() -> dict[str, Any]:
    """This CPU's model, whether it has int8 dot-product instructions, and its ISA_FLAGS (the int8
    choice's record: which features the chosen kernels could use)."""
    flags = isa_flags()
    return {"model": cpu_model(), "avx512_vnni": "avx512_vnni" in flags,
            "avx_vnni": "avx_vnni" in flags, "arm_dotprod": "asimddp" in flags,
            "amx_int8": "amx_int8" in flags, "isa_flags": flags}


def soc_temperature(temps: dict[str, float]) -> float | None:
    """The hottest CPU/SoC zone (all zones but battery/charger/skin ones when none is named like one)."""
    cpu = [t for k, t in temps.items() if re.search(r"cpu|soc|tsens|cluster|big|little|apc|mtktscpu", k, re.I)]
    vals = cpu or [t for k, t in temps.items() if not re.search(r"batt|usb|charger|skin|bms", k, re.I)]
    return max(vals) if vals else None


def heat_warnings(before_c: float | None, after_c: float | None) -> list[str]:
    """The one throttling rule on temperature, for every device: hot when the CPU/SoC is at
    HOT_C or above after the run, else warming when it rose RISE_C or more during it."""
    if after_c is not None and after_c >= HOT_C:
        was = f"{before_c:.0f}" if before_c is not None else "?"
        return [f"hot: SoC at {after_c:.0f} °C after the run (was {was} °C): timings may be throttled; "
                "let the device cool down"]
    if after_c is not None and before_c is not None and after_c - before_c >= RISE_C:
        return [f"warming: SoC temperature rose {after_c - before_c:.0f} °C during the run "
                f"({before_c:.0f} -> {after_c:.0f} °C)"]
    return []

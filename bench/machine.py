"""What machine a record was measured on, and its fp32 GEMM peak (the roofline's denominator)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

# ISA features that decide which kernels a runtime can use (x86 and Arm names).
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
             "asimd", "asimddp", "sve", "sve2", "i8mm", "bf16")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def isa_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        if line.lower().startswith(("flags", "features")):
            flags.update(line.split(":", 1)[1].split())
    return [f for f in ISA_FLAGS if f in flags]


def physical_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def machine_info() -> dict:
    """CPU model, cores, ISA flags, OS, memory and the load average when the run started."""
    import psutil

    return {"hostname": platform.node(), "cpu_model": cpu_model(), "arch": platform.machine(),
            "physical_cores": physical_cores(), "logical_cores": os.cpu_count(),
            "isa_flags": isa_flags(), "os": platform.platform(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS") if k in os.environ}}


def gemm_peak_gflops(threads: int, n: int = 1536, repeats: int = 7) -> dict:
    """Best-of-`repeats` fp32 GFLOP/s of an n x n torch.matmul at `threads` threads.

    Square matrices large enough to be compute-bound; the best run (not the mean) estimates what
    the machine can do, as a roofline's ceiling should.
    """
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    for _ in range(2):
        torch.matmul(a, b, out=c)  # warm-up: thread pool, caches
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return {"gemm_peak_gflops": 2 * n**3 / best / 1e9, "gemm_n": n, "threads": threads,
            "library": "torch.matmul fp32"}

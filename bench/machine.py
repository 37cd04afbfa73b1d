"""What machine a record was measured on, how busy it was while the record was taken (/proc), and
GEMM probes (fp32 and int8 peaks, the roofline's denominators) run inside the benchmark worker: the
timing is here, the GEMMs are the runtimes' own (pocketbert.backends: a GemmProbe program, else the
LibraryGemm of the library the process loaded, else numpy's).
CPU facts themselves (model, ISA flags, cores) are pocketbert.machine's. stdlib and numpy at module
level, psutil inside: the worker imports this on boards (psutil is one of the worker's own modules,
bench.devices.board.WORKER_REQUIRES)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from pocketbert.backends import GemmProbe, all_runtimes, get_runtime
from pocketbert.common import lookup
from pocketbert.machine import cpu_model, isa_flags, physical_cores

def machine_info() -> dict:
    """CPU model, cores, ISA flags, OS, memory and the load average when the run started."""
    import psutil

    return {"hostname": platform.node(), "cpu_model": cpu_model(), "arch": platform.machine(),
            "physical_cores": physical_cores(), "logical_cores": os.cpu_count(),
            "isa_flags": isa_flags(), "os": platform.platform(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_avg_1m": round(psutil.getloadavg()[0], 2),
            "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS") if k in os.environ}}


# ------------------------------------------------------------------------ trust: CPU sharing

def cpu_snapshot() -> dict:
    """What the whole machine and this process have used so far, for trust checks over a window.

    psutil.cpu_times() (on Linux and Android /proc/stat's jiffies in seconds, summed over CPUs):
    `busy` = user + nice + system + irq + softirq (guest time is inside user), `steal` = time the
    hypervisor gave our vCPUs to another guest (Linux only; 0 elsewhere). psutil's process
    cpu_times: this process's own CPU seconds, all its threads.
    """
    import psutil

    t = psutil.cpu_times()
    user, nice, system, idle, iowait, irq, softirq, steal = (getattr(t, k, 0.0) for k in (
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"))
    own = psutil.Process().cpu_times()
    return {"t_s": time.monotonic(), "self_cpu_s": own.user + own.system,
            "busy_s": user + nice + system + irq + softirq, "steal_s": steal,
            "total_s": user + nice + system + idle + iowait + irq + softirq + steal,
            "load_avg_1m": round(psutil.getloadavg()[0], 2)}


def cpu_window(a: dict, b: dict) -> dict:
    """Between two snapshots: wall seconds, this process's CPU, other processes' CPU in cores
    (machine busy time minus ours, per wall second) and the steal share of all CPU time."""
    wall = max(b["t_s"] - a["t_s"], 1e-9)
    own = b["self_cpu_s"] - a["self_cpu_s"]
    out = {"wall_s": wall, "own_cpu_cores": own / wall, "other_cpu_cores": None, "steal_pct": None}
    if a.get("busy_s") is not None and b.get("busy_s") is not None:
        out["other_cpu_cores"] = max(0.0, (b["busy_s"] - a["busy_s"]) - own) / wall
        total = b["total_s"] - a["total_s"]
        out["steal_pct"] = 100 * (b["steal_s"] - a["steal_s"]) / total if total > 0 else 0.0
    return out


# ------------------------------------------------------------------------ trust: GEMM probes

PROBE_N = 1024  # square GEMM: compute-bound on phones and desktops alike, 2 GFLOP per call
PROBE_BUDGET_S = 0.3  # per probe: short enough to run before and after every timed loop


def probe_library() -> str:
    """The GEMM library to probe with: the one the runtime in this process already loaded (so a
    probe adds no import and no memory to the runtime's footprint): the first runtime's, in rank order,
    whose library is loaded (torch, then onnxruntime), else numpy."""
    import sys

    return next((r.gemm.library for r in all_runtimes().values() if r.gemm and r.gemm.library in sys.modules),
                "numpy")


def gemm_probe(precision: str, threads: int | None, library: str | None = None,
               budget_s: float = PROBE_BUDGET_S, n: int = PROBE_N, program: str | None = None,
               runtime: str | None = None) -> dict:
    """GFLOP/s of an n x n x n GEMM in `precision`'s arithmetic (int8: the integer GEMM the int8
    path runs: torch's fbgemm dynamic-quantized linear, onnxruntime's MatMulInteger, or the
    runtime's own probe program), repeated for `budget_s`: best and median of the calls. fp16 and
    anything else probe fp32. With `runtime` and `program` (its GemmProbe's file), the runtime's own
    kernels run it; else the in-process `library`. Returns {} when the library has no such GEMM
    (e.g. int8 with numpy only)."""
    kind = "int8" if precision == "int8" else "fp32"
    probe: GemmProbe | None = get_runtime(runtime).probe if runtime and program and Path(program).is_file() else None
    rows, depth = n, 1  # the probe program: `depth` chained linears on rows * n rows; the others: one GEMM
    if probe:
        library, call = runtime, probe.open(Path(program), n, threads)
        rows, depth = probe.rows * n, probe.depth
    else:  # no probe program (a board, a user's file): the in-process library
        library = library or probe_library()
        call = _library_gemm(library)(kind, n, threads)
    if call is None and library != "numpy" and kind == "fp32":  # e.g. a board with onnxruntime but no onnx
        library, call = "numpy", _numpy_gemm(kind, n, threads)
    if call is None:
        return {}
    call()  # warm-up: thread pool, packing, caches
    times = []
    t_end = time.perf_counter() + budget_s
    while time.perf_counter() < t_end or len(times) < 2:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    times.sort()
    flop = 2 * rows * n * n * depth
    return {"gflops": flop / times[0] / 1e9, "median_gflops": flop / times[len(times) // 2] / 1e9,
            "calls": len(times), "n": n, "kind": kind, "library": library}


def _numpy_gemm(kind: str, n: int, threads: int | None):
    if kind != "fp32":
        return None  # numpy has no integer GEMM kernel (int matmul is a slow loop): no int8 peak
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    return lambda: a @ b


def _library_gemm(library: str):
    """The in-process GEMM maker of `library`: a runtime's (Runtime.gemm), or numpy's."""
    makers = {r.gemm.library: r.gemm.make for r in all_runtimes().values() if r.gemm}
    return lookup({**makers, "numpy": _numpy_gemm}, library, "GEMM probe library")


def probe_program_path(cache: Path, runtime: str, kind: str, n: int = PROBE_N) -> Path | None:
    """Where a bench cache keeps `runtime`'s GEMM probe program of `kind` (fp32 or int8); None when
    the runtime has no probe program of its own."""
    probe = get_runtime(runtime).probe
    if probe is None:
        return None
    return Path(cache) / "probes" / (f"{probe.stem}-{'int8' if kind == 'int8' else 'fp32'}-"
                                     f"{probe.rows * n}x{n}x{probe.depth}{probe.suffix}")

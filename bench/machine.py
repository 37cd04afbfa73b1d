"""What machine a record was measured on, how busy it was while the record was taken (/proc), and
GEMM probes (fp32 and int8 peaks, the roofline's denominators) run inside the benchmark worker.
stdlib at module level: the worker imports this on boards."""

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


# ------------------------------------------------------------------------ trust: CPU sharing

def cpu_snapshot() -> dict:
    """What the whole machine and this process have used so far, for trust checks over a window.

    /proc/stat (Linux, Android): jiffies per state summed over CPUs; `busy` = user + nice + system +
    irq + softirq (guest time is inside user), `steal` = time the hypervisor gave our vCPUs to
    another guest. getrusage: this process's own CPU seconds, all its threads (every OS). Where
    /proc is absent the machine fields are None and only the process's own time is known.
    """
    snap = {"t_s": time.monotonic(), "self_cpu_s": _self_cpu_s(), "busy_s": None, "steal_s": None,
            "total_s": None, "load_avg_1m": None}
    try:
        snap["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return snap
    if not fields or fields[0] != "cpu":
        return snap
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    v = [int(x) / hz for x in fields[1:]] + [0.0] * 10
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    snap.update(busy_s=user + nice + system + irq + softirq, steal_s=steal,
                total_s=user + nice + system + idle + iowait + irq + softirq + steal)
    return snap


def _self_cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


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
    probe adds no import and no memory to the runtime's footprint): torch, else onnxruntime, else numpy."""
    import sys

    if "torch" in sys.modules:
        return "torch"
    if "onnxruntime" in sys.modules:
        return "onnxruntime"
    return "numpy"


def gemm_probe(precision: str, threads: int | None, library: str | None = None,
               budget_s: float = PROBE_BUDGET_S, n: int = PROBE_N, program: str | None = None) -> dict:
    """GFLOP/s of an n x n x n GEMM in `precision`'s arithmetic (int8: the integer GEMM the int8
    path runs: torch's fbgemm dynamic-quantized linear, onnxruntime's MatMulInteger, or XNNPACK's
    dynamically quantized linear), repeated for `budget_s`: best and median of the calls. fp16 and
    anything else probe fp32. library "executorch" runs `program` (`xnnpack_probe_program`'s .pte).
    Returns {} when the library has no such GEMM (e.g. int8 with numpy only)."""
    library = library or probe_library()
    kind = "int8" if precision == "int8" else "fp32"
    if library == "executorch":
        call = _executorch_gemm(program, n, threads) if program and Path(program).is_file() else None
        if call is None:  # no probe program (a board, a user's file): the in-process library
            library = probe_library()
    if library != "executorch":
        call = _PROBES[library](kind, n, threads)
    if call is None and library != "numpy" and kind == "fp32":  # e.g. a board with onnxruntime but no onnx
        library, call = "numpy", _numpy_gemm(kind, n, threads)
    if call is None:
        return {}
    # the XNNPACK program: XNNPACK_PROBE_DEPTH chained linears on 2n rows; the others: one n x n x n GEMM
    rows, depth = (XNNPACK_PROBE_ROWS * n, XNNPACK_PROBE_DEPTH) if library == "executorch" else (n, 1)
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


def _torch_gemm(kind: str, n: int, threads: int | None):
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    a = torch.randn(n, n)
    if kind == "fp32":
        b, c = torch.randn(n, n), torch.empty(n, n)
        return lambda: torch.matmul(a, b, out=c)
    # The pytorch int8 path: nn.Linear dynamically quantized (fbgemm; activations quantized per call)
    lin = torch.ao.nn.quantized.dynamic.Linear(n, n, dtype=torch.qint8)
    lin.set_weight_bias(torch.quantize_per_tensor(torch.randn(n, n), 0.05, 0, torch.qint8), None)

    def run():
        with torch.inference_mode():
            lin(a)
    return run


def _ort_gemm(kind: str, n: int, threads: int | None):
    import numpy as np
    import onnxruntime as ort

    try:
        from onnx import TensorProto, helper
    except ImportError:  # a board with the runtime but not the onnx package: no model to build
        return None
    ta, tb, tc, op = ((TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT, "MatMul") if kind == "fp32" else
                      (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32, "MatMulInteger"))
    graph = helper.make_graph([helper.make_node(op, ["A", "B"], ["C"])], "probe",
                              [helper.make_tensor_value_info("A", ta, [n, n]),
                               helper.make_tensor_value_info("B", tb, [n, n])],
                              [helper.make_tensor_value_info("C", tc, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads, opts.inter_op_num_threads = int(threads), 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    if kind == "fp32":
        feeds = {"A": rng.standard_normal((n, n), dtype=np.float32), "B": rng.standard_normal((n, n), dtype=np.float32)}
    else:  # what onnxruntime's dynamic quantization feeds MatMulInteger: uint8 activations, int8 weights
        feeds = {"A": rng.integers(0, 255, (n, n), dtype=np.uint8), "B": rng.integers(-127, 127, (n, n), dtype=np.int8)}
    return lambda: sess.run(None, feeds)


def _numpy_gemm(kind: str, n: int, threads: int | None):
    if kind != "fp32":
        return None  # numpy has no integer GEMM kernel (int matmul is a slow loop): no int8 peak
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    return lambda: a @ b


_PROBES = {"torch": _torch_gemm, "onnxruntime": _ort_gemm, "numpy": _numpy_gemm}


# ExecuTorch rows are probed with XNNPACK's own kernels, not torch's: measured here, ExecuTorch fp32
# reached 102-106% of torch's fp32 GEMM "peak" (XNNPACK's GEMM is the faster one on this CPU), and
# torch's probe in a process whose model runs on ExecuTorch's threadpool moved 14-36% across quiet runs.

XNNPACK_PROBE_ROWS = 2  # XNNPACK probe input: 2n x n. At 1024 x 1024 its best fp32 call made 110-115
# GFLOP/s here, 2048 x 1024 made 124-136 and DistilBERT's own linears 124-126 (a "peak" below the model)
XNNPACK_PROBE_DEPTH = 4  # linears chained in the probe program, so one call's input/output copies are
# shared by 4 GEMMs: one linear made 115-140 GFLOP/s best, 4 chained 141-158 (same run, 3 rounds), and
# DistilBERT fp32, once XNNPACK took its attention whole, reached 155 (112% of the one-linear "peak")


def xnnpack_probe_program(kind: str, n: int, path: Path) -> Path:
    """Write a .pte holding XNNPACK_PROBE_DEPTH chained n x n linears lowered to XNNPACK, fed
    XNNPACK_PROBE_ROWS * n rows: fp32,
    or (int8) the int8 path of our ExecuTorch exports (XNNPACK quantizer, dynamic per-channel int8;
    activations quantized per call). Made once per bench cache by the export step (needs executorch's
    exporter, like a bundle)."""
    import torch
    from torch.export import export

    from pocketbert.backends.executorch import lower_to_xnnpack

    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(n, n, bias=False) for _ in range(XNNPACK_PROBE_DEPTH)]).eval()
    args = (torch.randn(XNNPACK_PROBE_ROWS * n, n),)
    with torch.no_grad():
        program = export(model, args, strict=False)
        if kind == "int8":  # exactly our exports' int8 recipe
            from pocketbert.backends.executorch import quantize_int8

            program = quantize_int8(program, [args], args)
        et = lower_to_xnnpack(program).to_executorch()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # readers never see half a program
    tmp.write_bytes(et.buffer)
    os.replace(tmp, path)
    return path


def probe_program_path(cache: Path, kind: str, n: int = PROBE_N) -> Path:
    """Where a bench cache keeps the XNNPACK probe program of `kind` (fp32 or int8)."""
    return Path(cache) / "probes" / (f"xnnpack-{'int8' if kind == 'int8' else 'fp32'}-"
                                     f"{XNNPACK_PROBE_ROWS * n}x{n}x{XNNPACK_PROBE_DEPTH}.pte")


def _executorch_gemm(program: str, n: int, threads: int | None):
    import torch

    from pocketbert.backends.executorch import open_method

    method, _ = open_method(Path(program), threads)
    a = torch.randn(XNNPACK_PROBE_ROWS * n, n)
    return lambda: method([a])


# Arm CPU part numbers (MIDR part, implementer 0x41) of common phone and board cores, for readable
# CPU names in device identities (adb phones, SSH boards).
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
             "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2",
             "0xd49": "Neoverse-N2", "0xd4b": "Cortex-A78C", "0xd4d": "Cortex-A715", "0xd4e": "Cortex-X3",
             "0xd4f": "Neoverse-V2", "0xd80": "Cortex-A520", "0xd81": "Cortex-A720", "0xd82": "Cortex-X4",
             "0xd85": "Cortex-X925", "0xd87": "Cortex-A725"}

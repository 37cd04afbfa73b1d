"""Per-operator profiles, the same for every runtime: each runtime's own profiler gives (operator kind,
ms) events (its `Runtime.profile`, in pocketbert/backends/<runtime>.py), and this module groups them
into CLASSES and builds the record's `Profile` (pocketbert.contracts). stdlib only: the benchmark
worker runs it on boards.

The profiled loop runs after the plain timed loop, in the same worker, over the same calls: profiling
costs time (ONNX Runtime writes an event per node, torch.profiler wraps every op), so the plain
latency never includes it, and the profile's own wall time is kept beside its events.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Iterable

from pocketbert.contracts import PROFILE_CLASSES as CLASSES
from pocketbert.contracts import Profile

# (class, pattern on the lower-cased operator kind), first match wins: ONNX op types (MatMulInteger,
# SkipLayerNormalization), aten names (aten::linear, native_layer_norm), quantized torch kernels
# (quantized::linear_dynamic) and ExecuTorch's edge names alike. Quantize/dequantize/cast steps are
# data movement (conversions between the GEMMs' formats), not GEMM time.
# XNNPACK's own operator names (ExecuTorch's ETDump inside the delegate) read "Fully Connected (NC,
# QD8, F32, QC8W) GEMM #1", "Batch Matrix Multiply (NC, F32)", "Convert (NC, F32, QD8)": QD8/QS8/QU8
# and QC8W/QC4W/QB4W name int8 (and 4-bit) data, and Convert is the dynamic quantization of activations.
# Our export spells LayerNorm for XNNPACK (export/targets/executorch.py): its reductions ("Mean (ND)
# Reduce2", "Mean Squared (ND) Reduce2") and rsqrt count as normalisation; its sub/mul/add stay "other".
RULES: tuple[tuple[str, str], ...] = (
    ("attention", r"attention|softmax"),
    ("int8 GEMM", r"matmulinteger|quantizematmul|integertofloat|qgemm|qlinearmatmul|quantized::linear|"
                  r"linear_dynamic|int8.*(mm|linear|gemm)|"
                  r"(fully connected|matrix multiply).*\b(qd8|qs8|qu8|qc8w|qc4w|qb4w)\b"),
    ("embedding/gather", r"embed|gather|index_select"),
    ("normalisation", r"norm|^mean \(|^mean squared|reciprocal square root"),  # XNNPACK: our LayerNorm's parts
    ("data movement", r"quantize|dequantize|choose_qparams|reshape|transpose|permute|view|concat|\bcat\b|split|"
                      r"slice|squeeze|expand|cast|shape|copy|clone|contiguous|_to_|\bto\b|flatten|select|unbind|"
                      r"^convert\b"),
    ("fp32 GEMM", r"matmul|gemm|linear|addmm|\bmm\b|bmm|baddbmm|::mm$|conv|fully connected|matrix multiply"),
    ("activation", r"gelu|relu|tanh|erf|sigmoid|silu"),
)


def classify(op: str) -> str:
    """The class of an operator kind ("MatMulInteger" -> "int8 GEMM"); "other" when no rule matches."""
    name = op.lower()
    for cls, pattern in RULES:
        if re.search(pattern, name):
            return cls
    return "other"


def timed_calls(run: Callable[[Any], Any], calls: Iterable[Any]) -> tuple[int, float]:
    """Run every call once under the caller's profiler: (calls, wall ms of the loop)."""
    n = 0
    t0 = time.perf_counter()
    for c in calls:
        run(c)
        n += 1
    return n, (time.perf_counter() - t0) * 1e3


def build_profile(tool: str, events: Iterable[tuple[str, float]], calls: int, wall_ms: float,
                  level: str = "operator", note: str = "") -> Profile:
    """A record's profile from a profiler's (operator kind, ms) events over `calls` calls that took
    `wall_ms` in all: per-kind totals, per-class totals (every class present) and shares."""
    ops: dict[str, float] = {}
    for op, ms in events:
        ops[op] = ops.get(op, 0.0) + float(ms)
    classes = {c: 0.0 for c in CLASSES}
    for op, ms in ops.items():
        classes[classify(op)] += ms
    total = sum(classes.values())
    return Profile(tool=tool, status="ok", level=level, note=note, calls=calls, wall_ms=round(wall_ms, 4),
                   events_ms=round(total, 4), classes_ms={c: round(ms, 4) for c, ms in classes.items()},
                   classes_pct={c: round(100 * ms / total, 2) if total else 0.0 for c, ms in classes.items()},
                   ops_ms=dict(sorted(((op, round(ms, 4)) for op, ms in ops.items()), key=lambda kv: -kv[1])))


def unavailable(tool: str, why: str) -> Profile:
    """The profile of a runtime (or build) that cannot give one here, saying why."""
    return Profile(tool=tool, status="unavailable", why=why)


def profile_run(runtime, request, runner, calls: list, work) -> Profile:
    """The profile of `calls` in `runtime` (its `profile` function: (request, runner, calls, work
    folder) -> Profile); a runtime without one says so."""
    if runtime.profile is None:
        return unavailable("none", f"the {runtime.label or runtime.name} runtime has no profiler here")
    try:
        return runtime.profile(request, runner, calls, work)
    except Exception as e:  # noqa: BLE001 - a profiler failure costs the profile, not the timed record
        why = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        return unavailable("failed", f"the profiler failed: {type(e).__name__}: {why}")

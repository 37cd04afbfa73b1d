"""int8 mode by measurement: build the target's int8 candidates (dynamic and static; ONNX also integer
attention and per-tensor weights), keep the fastest that passes its checks on this CPU.

Dynamic int8 quantizes activations per call (a min/max pass and a DynamicQuantizeLinear /
choose_qparams per linear input); static int8 fixes activation scales from calibration inputs, so
those passes go, but the fixed scales clip or coarsen what the calibration did not see. Which wins
depends on the model and the CPU's int8 kernels (x86 VNNI, Arm dot product): on a 2-vCPU AVX2 Zen 3
VM (no VNNI) static was no faster and less accurate; on a VNNI or Arm core it may be faster. So
`--int8-mode auto` (the default) decides per export:

1. build every candidate (`auto_modes`: the target's int8 modes but blockwise; the backend's own
   int8 builder, one mode each);
2. check each: parity against PyTorch fp32 and, with `--eval-data`, the task-metric gate; a
   candidate failing either is dropped with its reason;
3. time the passing ones in this process, interleaved (each round rotates their order, several calls
   each on the parity inputs padded to seq_len), median per candidate;
4. `choose`: the fastest passing candidate when it is at least MIN_SPEEDUP faster than the default
   (dynamic, the first), else the default;
5. record everything (`Int8Choice`, the manifest's notes.int8_choice: every candidate's samples and
   the CPU's int8 features) and log one line.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from pydantic import Field

from pocketbert.contracts import Contract
from pocketbert.inputs import pad_inputs
from pocketbert.machine import int8_cpu_facts

# --int8-mode values; auto measures the target's modes but AUTO_SKIPS; int-attention and per-tensor
# are ONNX's (dynamic int8 with integer attention matmuls, or one weight scale per tensor)
INT8_MODES = ("auto", "dynamic", "static", "blockwise", "int-attention", "per-tensor")
# Asked for by name only: blockwise buys accuracy with time (2x plain int8's latency on x86, measured
# in export/onnx_quant.py), so it is never the faster candidate worth building.
AUTO_SKIPS = ("blockwise",)
# Another candidate must beat the default (dynamic) by this much to be chosen: side-by-side medians of
# the same file on this 2-vCPU VM differ by a few % (and a shared host drifts more), so a smaller win
# is noise; dynamic is the safer default (no calibration-range clipping, per-channel weights, better
# logit SNR: 35 vs 27 dB static measured here).
MIN_SPEEDUP = 0.05
TIMING_ROUNDS = 4  # rounds of the interleaved timing; each round rotates which candidate runs first
CALLS_PER_ROUND = 4  # calls per candidate per round (the parity inputs in turn, padded to seq_len)
TIMING_THREADS = 2  # a phone's big-core count, as the bench's default and int8_guided's latency note


@dataclass
class Candidate:
    """One int8 build measured for the choice."""

    mode: str  # an int8 build mode (INT8_MODES but auto)
    p50_ms: float | None  # median latency per call (None: not timed: it was dropped first)
    samples_ms: list[float] = field(default_factory=list)  # every timed call, in run order
    parity: dict[str, Any] = field(default_factory=dict)  # status, min SNR dB, min cosine, agreement
    task_eval: dict[str, Any] | None = None  # status, metric, its value and drop vs fp32 (--eval-data)
    build_seconds: float = 0.0
    bytes: int = 0
    dropped: str | None = None  # why it cannot be chosen (failed parity or gate); None: eligible


class Int8Choice(Contract):  # a pydantic contract (pocketbert.contracts)
    """notes.int8_choice of an int8 manifest: which int8 build was kept and why."""

    SCHEMA: ClassVar[str] = "pocketbert-int8-choice/2"  # /2: any number of candidates, min_speedup
    WHAT: ClassVar[str] = "int8 choice"

    asked: str  # the --int8-mode given (auto; or why auto resolved without measuring)
    chosen: str  # one candidate's mode
    reason: str  # one line
    candidates: list[Candidate] = Field(default_factory=list)
    cpu: dict[str, Any] = Field(default_factory=dict)  # model and int8 dot-product ISA flags
    timing: dict[str, Any] = Field(default_factory=dict)  # threads, rounds, calls, tokens per call
    min_speedup: float = MIN_SPEEDUP  # over the default (the first candidate)
    schema_: str = Field(SCHEMA, alias="schema")


def choose(candidates: list[Candidate], min_speedup: float = MIN_SPEEDUP) -> tuple[str, str]:
    """(mode, one-line reason). The first candidate is the default (dynamic). Another is chosen only
    when it passes its checks and its median is at least `min_speedup` below the default's; of several,
    the fastest. A dropped candidate is never chosen; when the default is dropped, the fastest that
    passed is kept; when all are dropped, the default is kept and its failed check fails the export."""
    default = candidates[0]
    ok = [c for c in candidates if c.dropped is None]
    dropped = "; ".join(f"{c.mode} dropped ({c.dropped})" for c in candidates if c.dropped)
    if not ok:
        return default.mode, f"all dropped: {default.mode} kept, its failed check fails the export ({dropped})"
    timed = sorted((c for c in ok if c.p50_ms is not None), key=lambda c: c.p50_ms)
    times = ", ".join(f"{c.mode} {c.p50_ms:.1f}" for c in timed) + " ms p50" if timed else ""
    why = "; ".join(filter(None, [times, dropped]))
    if default.dropped is not None:
        best = timed[0] if timed else ok[0]
        return best.mode, f"{why}: {best.mode} is the {'fastest' if len(timed) > 1 else 'only'} one that passes"
    if len(ok) == 1:
        return default.mode, f"{dropped}: {default.mode} is the only one that passes"
    if default.p50_ms is None:
        return default.mode, f"not timed: {default.mode} by default"
    best = timed[0]
    gain = 1 - best.p50_ms / default.p50_ms
    if best is not default and gain >= min_speedup:
        return best.mode, f"{why}: {best.mode} {gain:.1%} faster than {default.mode} (>= {min_speedup:.0%}) and passes"
    if best is default:
        return default.mode, f"{why}: {default.mode} fastest"
    return default.mode, f"{why}: {best.mode} {gain:+.1%}, not >= {min_speedup:.0%} faster than {default.mode}"


def auto_modes(target) -> tuple[str, ...]:
    """The int8 builds `--int8-mode auto` measures for a target: its int8 modes but AUTO_SKIPS, the
    default (dynamic) first."""
    modes = [m for m in target.int8_modes if m not in AUTO_SKIPS]
    return tuple(sorted(modes, key=lambda m: m != "dynamic"))


def resolve(target, available: tuple[bool, str], precision: str, cfg) -> tuple[str | None, str]:
    """The int8 mode this (target, precision) is built with: None (not int8, or a target without
    int8 modes: --int8-mode is ignored), "dynamic", "static" or "auto"; and why, when auto was
    resolved without measuring. `available`: whether the target's runtime runs here (and why not)."""
    if precision != "int8" or len(target.int8_modes) < 2:
        return None, ""
    if cfg.int8_mode == "auto" and target.int8_guided and cfg.int8_guided:
        return "dynamic", "--int8-guided chooses per-layer precisions on the dynamic graph"
    if cfg.int8_mode == "auto" and not available[0]:
        return "dynamic", f"not measured: {available[1]}"
    return cfg.int8_mode, ""


def interleaved_ms(runners: dict[str, Any], feeds: list[dict], rounds: int = TIMING_ROUNDS,
                   calls: int = CALLS_PER_ROUND) -> dict[str, list[float]]:
    """Per runner, the latency of every call (ms): `rounds` rounds, the runners' order rotated by
    one each round, `calls` calls each on `feeds` in turn; one untimed warm-up call each."""
    order = list(runners)
    for run in runners.values():
        run(feeds[0])
    samples: dict[str, list[float]] = {k: [] for k in order}
    for r in range(rounds):
        for key in order[r % len(order):] + order[:r % len(order)]:
            for i in range(calls):
                t0 = time.perf_counter()
                runners[key](feeds[i % len(feeds)])
                samples[key].append(round((time.perf_counter() - t0) * 1e3, 3))
    return samples


@dataclass
class Built:
    """A candidate on disk with its checks (in-process only, not written)."""

    folder: Path
    result: Any  # the backend's ExportResult
    parity: dict
    task_eval: dict | None
    candidate: Candidate


# (mode, folder, log) -> ExportResult: one int8 build; (result, folder, log) -> (parity, task_eval): its
# checks, as any export's
Build = Callable[[str, Path, Callable[[str], None]], Any]
Check = Callable[[Any, Path, Callable[[str], None]], tuple[dict, dict | None]]
# (model file, threads) -> a runner: the target's runtime, for the timing
Load = Callable[[Path, int], Callable[[dict], Any]]


def choose_int8_mode(build: Build, check: Check, load: Load, examples: list[dict], bundle: Path, log,
                     modes: tuple[str, ...] = ("dynamic", "static")):
    """Build each of `modes` (the default first) into hidden folders of `bundle` -> check each
    (parity, task gate; `build` and `check` are the caller's) -> time the passing ones interleaved
    (`load`: the caller's runtime) -> choose -> move the chosen file into `bundle`. Returns
    (ExportResult with notes.int8_choice, parity, task_eval, export seconds: every build and the timing)."""
    built = {mode: build_candidate(mode, build, check, bundle, log) for mode in modes}
    timing = time_candidates(load, built, examples)
    chosen, reason = choose([b.candidate for b in built.values()])
    log(f"int8 auto -> {chosen}: {reason}")  # the two medians, or why one was dropped
    choice = Int8Choice(asked="auto", chosen=chosen, reason=reason,
                        candidates=[b.candidate for b in built.values()], cpu=int8_cpu_facts(),
                        timing=timing)
    keep = built[chosen]
    for p in keep.folder.iterdir():
        p.replace(bundle / p.name)
    for b in built.values():
        shutil.rmtree(b.folder)
    result = dataclasses.replace(keep.result, notes={**(keep.result.notes or {}),
                                                     "int8_choice": choice.to_dict()})
    export_seconds = sum(b.candidate.build_seconds for b in built.values()) + timing["seconds"]
    return result, keep.parity, keep.task_eval, export_seconds


def build_candidate(mode: str, build: Build, check: Check, bundle: Path, log) -> Built:
    """One int8 mode built into bundle/.int8-MODE and checked like any export; dropped (with the
    reason) when parity or the task gate fails."""
    folder = bundle / f".int8-{mode}"
    folder.mkdir()
    say = lambda msg: log(f"{mode}: {msg}")  # noqa: E731
    t0 = time.perf_counter()
    result = build(mode, folder, say)
    seconds = time.perf_counter() - t0
    parity, task_eval = check(result, folder, say)
    failed = [f"{what} {check['status']}" for what, check in
              (("parity", parity), ("task gate", task_eval or {}))
              if check.get("status", "").startswith("failed")]
    return Built(folder, result, parity, task_eval, Candidate(
        mode=mode, p50_ms=None, parity=_parity_figures(parity), task_eval=_task_figures(task_eval),
        build_seconds=round(seconds, 2), bytes=(folder / result.model_file).stat().st_size,
        dropped="; ".join(failed) or None))


def time_candidates(load: Load, built: dict[str, Built], examples) -> dict[str, Any]:
    """Time the candidates that passed their checks (when two or more did) in this process, interleaved,
    on the parity inputs padded to the file's length; sets their samples and medians. Returns the
    timing setup for the record."""
    width = max(next(iter(built.values())).result.seq_lens)
    setup = {"threads": TIMING_THREADS, "rounds": TIMING_ROUNDS, "calls_per_round": CALLS_PER_ROUND,
             "tokens_per_call": width, "inputs": "the parity inputs, padded", "seconds": 0.0}
    passing = {m: b for m, b in built.items() if b.candidate.dropped is None}
    if len(passing) < 2:
        return setup  # nothing to compare: the rule keeps the one that passed
    t0 = time.perf_counter()
    runners = {m: load(b.folder / b.result.model_file, TIMING_THREADS) for m, b in passing.items()}
    samples = interleaved_ms(runners, [pad_inputs(ex, width) for ex in examples])
    for m, b in passing.items():
        b.candidate.samples_ms = samples[m]
        b.candidate.p50_ms = round(float(np.median(samples[m])), 2)
    setup["seconds"] = round(time.perf_counter() - t0, 2)
    return setup


def unmeasured_choice(asked: str, chosen: str, reason: str) -> dict:
    """notes.int8_choice when auto resolved without building the candidates (guided int8, no runtime)."""
    return Int8Choice(asked=asked, chosen=chosen, reason=reason, cpu=int8_cpu_facts()).to_dict()


# CPU features an int8 kernel choice can hinge on (x86 VNNI / AMX, Arm dot product / i8mm): a bundle
# whose int8 mode was timed on a CPU with other ones may not have the faster mode where it runs
INT8_FEATURES = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def chosen_elsewhere(manifest_notes: dict, machine: dict) -> str | None:
    """One line when a bundle's int8 mode was chosen by timing on another CPU than `machine` (a bench
    record's machine: cpu_model, isa_flags), naming both and their int8 features; else None."""
    choice = (manifest_notes or {}).get("int8_choice") or {}
    cpu = choice.get("cpu") or {}
    if not choice.get("candidates") or not cpu.get("model"):
        return None  # not chosen by timing (asked by name, or auto resolved without measuring)
    here = machine.get("cpu_model")
    if cpu["model"] == here:
        return None

    def features(flags) -> str:
        return ", ".join(f for f in INT8_FEATURES if f in flags) or "no int8 dot product"

    flags_then = cpu.get("isa_flags") or [f for f in INT8_FEATURES if cpu.get(f)]
    return (f"int8 mode {choice.get('chosen')} was chosen by timing on {cpu['model']} "
            f"({features(flags_then)}), benchmarked on {here} ({features(machine.get('isa_flags') or [])}): "
            "re-export with --int8-mode auto there, or time the modes there (--int8-mode NAME)")


def _parity_figures(parity: dict) -> dict:
    keys = ("status", "min_snr_db", "min_cosine", "max_abs_diff", "decision_agreement")
    return {k: parity[k] for k in keys if k in parity}


def _task_figures(task_eval: dict | None) -> dict | None:
    if not task_eval:
        return None
    keys = ("status", "metric", "export", "fp32_pytorch", "f1_drop", "accuracy_drop",
            "identical_answers")
    return {k: task_eval[k] for k in keys if k in task_eval}

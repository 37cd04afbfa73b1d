"""Accuracy-guided int8: keep the layers int8 hurts most in fp32 until the task metric holds.

Plain int8 quantizes every weight; on a trained model a few layers (typically ones whose input
activations carry outlier features, which the per-tensor dynamic activation scale then flattens)
cost most of the accuracy. The steps:

1. sensitivity: for each quantizable node alone, quantize only that node and measure the output
   SNR (dB) against the fp32 graph on a few windows of the choosing data (cheap: one small run per
   node, no task metric);
2. greedy: keep the k least-robust nodes in fp32 and score the task metric (F1 drop and
   identical answers vs the fp32 graph) on the choosing data, plus the int8 parity bound on the
   sensitivity windows; the smallest k where all hold is found by doubling then bisection (a few metric runs, not one per node);
3. record every node's chosen precision and SNR, the metric per step and the chosen build's size
   and latency next to plain int8's.

Metric: SQuAD F1 for QA, accuracy on a GLUE-style TSV for classification (export/task_eval.py).
The choosing data must not be the data the export is reported on (`--eval-data`): the choice is
tuned to it. Backend-neutral: the backend passes in how to quantize with a node list and how to
load a runner.
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from export.parity import check_parity
from export.targets import all_targets
from export.task_eval import EVAL_KINDS, parse_eval_spec
from pocketbert.common import Interrupted, UsageError, console_stderr, received_signal

SENSITIVITY_WINDOWS = 16  # windows the per-node SNR sweep runs: ranking needs few, each node is a build
LATENCY_THREADS = 2  # the export-time latency note: a phone's big-core count, as the bench's default


def check_choosing_spec(spec: str, eval_spec: str | None, task: str,
                        pairs: list[tuple[str, str]]) -> None:
    """Before any work: an ONNX int8 bundle to guide, data for the task, and other data than the
    export is reported on (a choice tuned to the reported figure would flatter it)."""
    guided = {name: t.label or name for name, t in all_targets().items() if t.int8_guided}
    if not any((name, "int8") in pairs for name in guided):
        raise UsageError(f"--int8-guided chooses per-layer precisions of {' / '.join(guided.values())} int8 "
                         f"only: add --target {next(iter(guided))} --precision int8")
    kind, path = parse_eval_spec(spec)
    if kind not in ("squad", "glue"):
        raise UsageError(f"--int8-guided chooses on squad:PATH or glue:PATH data (answers to keep), not {kind}:PATH")
    if EVAL_KINDS[kind] != task:
        raise UsageError(f"--int8-guided {kind}:PATH guides {EVAL_KINDS[kind]} exports, not {task}")
    if eval_spec and parse_eval_spec(eval_spec)[1].resolve() == path.resolve():
        raise UsageError(f"--int8-guided and --eval-data are the same file ({path}): choose on "
                         "other data than the export is reported on")


def node_modules(path: Path, op_types: list[str]) -> dict[str, str]:
    """Quantizable nodes (a constant weight: MatMul's B, Gather's table) -> the PyTorch module
    they came from (the dynamo exporter's name scope), in graph order."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    consts = {t.name for t in graph.initializer}
    consts |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    out = {}
    for n in graph.node:
        if n.op_type not in op_types:
            continue
        weight = n.input[0] if n.op_type == "Gather" else n.input[1] if len(n.input) > 1 else ""
        if weight not in consts:
            continue
        scopes = next((p.value for p in n.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), "")
        try:
            names = ast.literal_eval(scopes) if scopes else []
        except (ValueError, SyntaxError):
            names = []
        module = names[-2] if len(names) >= 2 else n.name
        out[n.name] = module.removeprefix("model.")
    return out


def _stop_if_signalled() -> None:
    """The export runs with Ctrl-C/SIGTERM held (common.signals_deferred); this sweep is minutes
    of separate library calls, so stop between them instead of at its end."""
    if (signum := received_signal()) is not None:
        raise Interrupted(signum)


def snr_db(ref: list[np.ndarray], got: list[np.ndarray]) -> float:
    """Signal-to-noise ratio of every output together, in dB (inf when equal)."""
    sig = sum(float(np.sum(np.square(r.astype(np.float64)))) for r in ref)
    noise = sum(float(np.sum(np.square(r.astype(np.float64) - g))) for r, g in zip(ref, got))
    return float("inf") if noise == 0 else 10 * np.log10(max(sig, 1e-30) / noise)


def choose_exclusions(fp32_path: Path, nodes: dict[str, str], quantize: Callable, load: Callable,
                      input_names: list[str], data, max_drop: float, min_identical: float,
                      work: Path, task: str, log=print, progress: bool = True
                      ) -> tuple[list[str], dict]:
    """The nodes to keep in fp32 and the notes recording the choice.

    quantize(src, out, only=None, exclude=None) -> Path builds an int8 graph; load(path) -> runner;
    `data` is an export.task_eval.TaskData (SQuAD F1 or GLUE accuracy; `max_drop` in its points).
    """
    from tqdm import tqdm

    reference = load(fp32_path)
    probe_feeds = data.probe_feeds(input_names, SENSITIVITY_WINDOWS)
    ref_out = [reference(f) for f in probe_feeds]
    snr = {}
    for node in tqdm(nodes, desc="int8 sensitivity", unit="node", disable=not progress, leave=False,
                     file=console_stderr()):
        _stop_if_signalled()
        run = load(quantize(fp32_path, work / "probe.onnx", only=[node]))
        got = [run(f) for f in probe_feeds]
        snr[node] = snr_db([o for outs in ref_out for o in outs], [o for outs in got for o in outs])
    order = sorted(nodes, key=lambda n: snr[n])  # least robust first
    log("int8 sensitivity (worst first): " + ", ".join(
        f"{nodes[n]} {snr[n]:.1f} dB" for n in order[:5]))

    cache: dict = {}
    steps: list[dict] = []

    def meets(k: int) -> bool:
        """The task metric within bounds and the int8 parity bound held (a random-init
        classifier's decisions can hide a broken layer that the logits show)."""
        _stop_if_signalled()
        run = load(quantize(fp32_path, work / "step.onnx", exclude=order[:k]))
        parity = check_parity(task, "int8", reference, run, probe_feeds)
        r = data.score(input_names, reference, run, None, max_drop, min_identical, cache, progress)
        drop = r.get("f1_drop", r.get("accuracy_drop"))
        steps.append({"fp32_nodes": k, "metric": r["metric"], "drop": round(drop, 3),
                      "identical_answers": round(r["identical_answers"], 4),
                      "parity_min_snr_db": round(parity["min_snr_db"], 2),
                      "status": r["status"] if parity["status"] == "passed"
                      else f"parity {parity['status']}"})
        log(f"int8 guided: {k} node(s) fp32 -> {r['metric']} drop {drop:.2f}, identical answers "
            f"{r['identical_answers']:.1%}, logit SNR {parity['min_snr_db']:.1f} dB")
        return steps[-1]["status"] == "passed"

    chosen = first_passing(len(order), meets)
    exclude = order[:len(order) if chosen is None else chosen]
    notes = {
        "choosing_data": str(data.path),
        "choosing_items": data.size,
        "bounds": {"max_drop": max_drop, "min_identical_answers": min_identical},
        "metric_reference": "fp32 ONNX graph (equal to PyTorch fp32 within 1e-6)",
        "sensitivity_windows": len(probe_feeds),
        "bounds_met": chosen is not None,
        "steps": steps,
        "fp32_nodes": [{"node": n, "module": nodes[n]} for n in exclude],
        "per_node": [{"node": n, "module": nodes[n], "precision": "fp32" if n in exclude else "int8",
                      "alone_int8_snr_db": round(snr[n], 2)} for n in nodes],
    }
    return exclude, notes


def first_passing(n: int, meets: Callable[[int], bool]) -> int | None:
    """The smallest k in 0..n with meets(k), assuming more fp32 nodes never hurt: k = 0, then
    doubling (1, 2, 4, ...) to a passing k, then bisection below it: O(log n) task-metric runs
    instead of one per node. None when even k = n (all fp32) fails."""
    failing, k = -1, 0
    while not meets(k):
        if k == n:
            return None
        failing, k = k, min(n, max(1, 2 * k))
    passing = k
    while passing - failing > 1:
        mid = (failing + passing) // 2
        if meets(mid):
            passing = mid
        else:
            failing = mid
    return passing


def latency_ms(load: Callable, paths: dict[str, Path], feeds: dict[str, np.ndarray],
               reps: int = 10) -> dict[str, float]:
    """Median latency of each model on the same input, runs interleaved in rotated order so
    machine noise hits every model alike (a rough export-time figure, not a benchmark)."""
    runners = {k: load(p) for k, p in paths.items()}
    for run in runners.values():
        run(feeds)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in runners}
    keys = list(runners)
    for i in range(reps):
        for k in keys[i % len(keys):] + keys[:i % len(keys)]:
            t0 = time.perf_counter()
            runners[k](feeds)
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: round(float(np.median(v)), 2) for k, v in times.items()}

"""ExecuTorch's Android benchmark app (`org.pytorch.minibench`) and its results, as our records.

minibench (executorch/extension/benchmark/android/benchmark) loads the first `.pte` in `model_dir`,
runs `forward()` on all-ones inputs `num_warm_up_iter` times untimed and `num_iter` times timed, and
writes `files/benchmark_results.json`: a Gson list of BenchmarkMetric objects
  {"benchmarkModel": {"name", "backend", "quantization"}, "metric": "avg_inference_latency(ms)",
   "actualValue": 12.3, "targetValue": 0.0, "deviceInfo": {"device", "arch", "os", "totalMem", "availMem"}}
with the metrics avg_inference_latency(ms), trimmean_inference_latency(ms) (10 % cut at each end,
as our trimmed mean), model_load_time(ms), load_status (0 = loaded) and ram_pss_usage(mb).

It gives summaries, not samples: one launch is ONE latency sample in our record (the mean of its
`num_iter` calls); more launches give more samples. What it cannot give is listed in
`notes["not_measured"]` of every record made here.
"""

from __future__ import annotations

import json
import re
from typing import Any

PACKAGE = "org.pytorch.minibench"
RUNNER_LOG_TAG = "ExecuTorch"  # the logcat tag ExecuTorch's executor_runner logs its timings under (via=runner)
COMPONENT = f"{PACKAGE}/.BenchmarkActivity"
RESULT_FILE = "files/benchmark_results.json"  # relative to the app's data dir (run-as)
INSTALL_HINT = ("build and install ExecuTorch's benchmark app: executorch/extension/benchmark/android/"
                "benchmark (`./gradlew installDebug`, see its README)")

NOT_MEASURED = {
    "latency_ms": "one sample per minibench launch: the mean of its num_iter forward() calls, not per-item "
                  "latency on real inputs",
    "inputs": "all-ones tensors at the .pte's (largest) shape: no real questions, no padding effects, "
              "no per-question windows",
    "tokenize_ms": "not measured (minibench has no tokenizer): 0.0 placeholders",
    "postprocess_ms": "not measured (no answer-span search): 0.0 placeholders",
    "first_inference_ms": "not reported (warm-up calls are not timed)",
    "peak_rss_mb": "not reported: runtime_rss_mb holds minibench's PSS growth (ram_pss_usage) instead",
    "threads": "minibench takes no thread count: ExecuTorch's default (the big cores)",
    "answers": "none (outputs are not read)",
}

_METRIC = re.compile(r"^(?P<name>[a-z_]+)(?:\((?P<unit>[a-z]+)\))?$")


def minibench_model_name(model: str, precision: str) -> str:
    """The .pte file name minibench parses into name/backend/quantization: NAME_xnnpack_PRECISION.pte."""
    safe = re.sub(r"\W", "_", model.rsplit("/", 1)[-1]) or "model"
    return f"{safe}_xnnpack_{precision}.pte"


def parse_results(text: str) -> dict[str, Any]:
    """benchmark_results.json -> {"metrics": {"avg_inference_latency_ms": ..}, "model": {..}, "device": {..}}.

    Raises ValueError (one line) when the text is not minibench's format."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"minibench results are not JSON ({e.msg})") from None
    if not isinstance(data, list) or not all(isinstance(m, dict) and "metric" in m and "actualValue" in m
                                             for m in data):
        raise ValueError("minibench results are not a list of {metric, actualValue} objects")
    metrics: dict[str, float] = {}
    for m in data:
        match = _METRIC.match(str(m["metric"]).strip())
        key = f"{match['name']}_{match['unit']}" if match and match["unit"] else str(m["metric"])
        metrics[key] = float(m["actualValue"])
    first = data[0] if data else {}
    return {"metrics": metrics, "model": first.get("benchmarkModel", {}), "device": first.get("deviceInfo", {})}


def launches_to_record(launches: list[dict[str, Any]], num_iter: int, warmup: int) -> dict[str, Any]:
    """Record fields from one or more parsed minibench launches (the harness adds identity/provenance).

    A launch whose model failed to load (load_status != 0) makes a failed record."""
    if not launches:
        raise ValueError("no minibench results")
    bad = [p["metrics"].get("load_status") for p in launches if p["metrics"].get("load_status", 0) != 0]
    if bad:
        return {"status": "failed", "reason": f"minibench could not load the model (load_status {bad[0]:.0f}: "
                                              "an ExecuTorch error code; see `adb logcat`)"}
    missing = [k for k in ("avg_inference_latency_ms", "model_load_time_ms") if k not in launches[0]["metrics"]]
    if missing:
        raise ValueError(f"minibench results lack {', '.join(missing)}")
    means = [p["metrics"]["avg_inference_latency_ms"] for p in launches]
    loads = [p["metrics"]["model_load_time_ms"] for p in launches]
    pss = [p["metrics"]["ram_pss_usage_mb"] for p in launches if "ram_pss_usage_mb" in p["metrics"]]
    n = len(launches)
    return {
        "status": "ok", "reason": "", "workload": "minibench-ones", "workload_source":
            f"ExecuTorch minibench: all-ones inputs, {num_iter} timed + {warmup} warm-up forward() per launch",
        "shape": "fixed", "warmup": warmup,
        "item_ids": [f"minibench-launch-{i + 1}" for i in range(n)],
        "latency_ms": means, "tokenize_ms": [0.0] * n, "postprocess_ms": [0.0] * n,
        "load_ms": loads[0], "first_inference_ms": None, "n_items": n, "n_model_calls": n * num_iter,
        "peak_rss_mb": None, "baseline_rss_mb": None, "runtime_rss_mb": max(pss) if pss else None,
        "threads_effective": None, "answers_sample": [],
        "notes": {"source": "org.pytorch.minibench", "num_iter": num_iter, "num_warm_up_iter": warmup,
                  "launches": [p["metrics"] for p in launches],
                  "minibench_model": launches[0]["model"], "minibench_device": launches[0]["device"],
                  "not_measured": NOT_MEASURED},
    }

"""One JSON record per (model, runtime, precision, workload, shape) run.

A record keeps the raw per-item samples (latency_ms, tokenize_ms, postprocess_ms) and everything
derived from them (`stats`), plus provenance (machine, versions, git revision). Units are in the
field names. Skipped and failed runs are records too (status + reason), so a report shows them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.farm import find_farm_records
from bench.stats import summarize
from bench.trust import judge
from pocketbert.common import UsageError
from pocketbert.contracts import Record

SCHEMA = "pocketbert-bench/1"


def record_name(rec: dict[str, Any]) -> str:
    """File name of a record: <model>-<runtime>-<precision>-<workload>-<shape>[@<remote device>].json."""
    model = Path(str(rec["model"])).name if "/" in str(rec["model"]) else str(rec["model"])
    device = str((rec.get("machine") or {}).get("device", "local"))
    at = "@" + re.sub(r"[^A-Za-z0-9_.-]+", "_", device.split("://", 1)[1]) if "://" in device else ""
    return f"{model}-{rec['runtime']}-{rec['precision']}-{rec['workload']}-{rec['shape']}{at}.json"


def derive(rec: dict[str, Any]) -> dict[str, Any]:
    """Fill the statistics and totals of a record from its raw samples, and judge its trust evidence
    against bench.trust's tolerances unless it was judged already (a single round's verdict is its
    worker result's). Called once, when the record is built (bench.record_build), or when a record that
    came without statistics is read (a device app's, a farm's): reports print what records store."""
    if rec.get("status") != "ok":
        return rec
    lat, tok, post = rec["latency_ms"], rec["tokenize_ms"], rec["postprocess_ms"]
    e2e = [a + b + c for a, b, c in zip(lat, tok, post)]
    rec["stats"] = {"latency_ms": summarize(lat), "tokenize_ms": summarize(tok),
                    "postprocess_ms": summarize(post), "end_to_end_ms": summarize(e2e)}
    rec["total_model_s"] = sum(lat) / 1e3
    rec["total_end_to_end_s"] = sum(e2e) / 1e3
    rec["throughput_items_per_s"] = len(lat) / rec["total_model_s"] if rec["total_model_s"] else None
    real, fed = rec["tokens"]["real"], rec["tokens"]["fed"]
    rec["tokens"]["padding_waste"] = 1 - real / fed if fed else 0.0
    flops = rec.get("flops_total")
    if flops and rec["total_model_s"]:
        rec["achieved_gflops"] = flops / rec["total_model_s"] / 1e9
        peak = rec.get("gemm_peak_gflops")
        rec["fraction_of_peak"] = rec["achieved_gflops"] / peak if peak else None
    if rec.get("trust") and "noisy" not in rec["trust"]:
        machine = rec.get("machine") or {}
        judge(rec["trust"], machine.get("logical_cores") or machine.get("physical_cores"), rec.get("threads"),
              rec.get("fraction_of_peak"))
    loop = rec.get("harness_overhead")
    if loop and loop.get("bare_loop_s"):
        # Timed loop minus post-processing (workload work) vs the bare loop: includes run-to-run noise.
        loop["timed_vs_bare"] = (loop["timed_loop_s"] - loop.get("postprocess_s", 0.0)) / loop["bare_loop_s"] - 1
    if loop and loop.get("null_loop_s") is not None and rec["total_model_s"]:
        # The harness's own cost (the timed loop around a do-nothing runner) per unit of model time.
        loop["overhead_fraction"] = loop["null_loop_s"] / rec["total_model_s"]
    return rec


STAT_KEYS = ("latency_ms", "tokenize_ms", "postprocess_ms", "end_to_end_ms")
SUMMARY_KEYS = frozenset(summarize([1.0]))  # what bench.stats gives for each of them


def with_statistics(rec: dict[str, Any]) -> dict[str, Any]:
    """A record read from disk as reports use it: its own stored statistics, or, for one that came
    without (a device app's or a farm's record, or one written before every summary was stored),
    derived now, once."""
    stats = rec.get("stats") or {}
    complete = all(SUMMARY_KEYS <= set(stats.get(k) or {}) for k in STAT_KEYS)
    return rec if rec.get("status") != "ok" or complete else derive(rec)


def load_records(paths: list[Path]) -> list[dict[str, Any]]:
    """Records from result folders or files (several machines' runs can be merged)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(q for q in p.rglob("*.json") if not q.name.startswith(".")
                            and "bundles" not in q.relative_to(p).parts)
        elif p.is_file():
            files += [] if p.suffix == ".zip" else [p]
        else:
            raise UsageError(f"{p} not found: pass result folders or record files")
    records = []
    for f in files:
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{f} is not valid JSON ({str(e).splitlines()[0][:100]})") from None
        if isinstance(rec, dict) and str(rec.get("schema", "")).startswith("pocketbert-bench/"):
            Record.from_dict(rec, str(f))  # wrong version or types: one line naming the file
            rec["_path"] = str(f)
            records.append(rec)
    # Device-farm artifacts: zips (nested too) and renamed record files (bench/farm.py).
    farm = {r["_path"]: r for r in find_farm_records([p for p in map(Path, paths) if p.is_dir() or p.suffix == ".zip"])}
    records = [farm.pop(r["_path"], r) for r in records] + list(farm.values())  # farm identity attached
    if not records:
        raise UsageError(f"no benchmark records ({SCHEMA}) under {', '.join(map(str, paths))}")
    return [with_statistics(r) for r in records]

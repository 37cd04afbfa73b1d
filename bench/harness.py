"""`run_bench`: the benchmark pipeline, top to bottom.

  validate the plan -> machine info + GEMM peak (in a worker, at the bench thread count)
  -> per workload and model: tokenize once -> per runtime x precision x shape: bundle (exported
  on demand, sha256-verified) -> worker subprocess on the Device -> one record written atomically
  -> report rendered from the records.
Ctrl-C stops the running worker; every record already written stays.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pocketbert.common import UsageError, clean_leftovers, git_revision, library_versions, lookup, write_json

SHAPES = ("fixed", "dynamic")


@dataclass
class BenchConfig:
    models: list[str] = field(default_factory=lambda: ["distilbert-base"])  # presets or HF folders
    runtimes: list[str] = field(default_factory=lambda: _all_runtimes())  # every registered backend
    precisions: list[str] = field(default_factory=lambda: ["fp32", "int8"])  # the paper's fp32 + the phone's int8
    workloads: list[str] = field(default_factory=lambda: ["synthetic"])  # runs with nothing downloaded
    shapes: list[str] = field(default_factory=lambda: list(SHAPES))  # padded (mobile-style) and real length
    seq_len: int = 128  # max tokens; the default keeps the main job to minutes (384 = SQuAD window)
    threads: int | None = None  # None: all physical cores; the same count for every runtime
    warmup: int = 3  # untimed runs after the first inference: caches, pools, lazy init
    limit: int | None = None  # first N items of the workload (None: all; synthetic default 48)
    tokenizer: str | None = None  # vocab.txt/folder for presets: real token lengths (default: generated vocab)
    out: Path = Path("results")  # records go to out/<run_id>/
    run_id: str | None = None  # default: UTC timestamp; reuse one to add records to a run
    bundle_cache: Path | None = None  # exported bundles are cached here (default: out/bundles)
    bundles: list[Path] = field(default_factory=list)  # run these existing bundles instead of exporting
    onnx_optimize: bool = False  # export ONNX through ORT's transformer fusion
    overhead_check: bool = False  # also time a bare loop to measure the harness's own overhead
    timeout_s: float | None = None  # per worker; None: no limit
    report: bool = True  # render report.md / results.csv / plots at the end
    quiet: bool = False  # no progress bars (tests, CI logs)


def _all_runtimes() -> list[str]:
    from pocketbert.backends import backend_names

    return backend_names()


@dataclass
class Run:
    model: str
    task: str
    runtime: str
    precision: str
    shape: str
    bundle: Path | None = None  # a given bundle (bundles mode); else exported on demand


def run_bench(cfg: BenchConfig, device=None, log=print) -> Path:
    """Run the whole benchmark described by `cfg`; returns the folder of records."""
    from bench.devices.local import LocalDevice
    from bench.machine import physical_cores
    from bench.workloads import check_workload, load_workload, parse_spec, save_items
    from pocketbert.contracts import Record, WorkerSpec

    device = device or LocalDevice()
    threads = cfg.threads or physical_cores()
    kinds = [parse_spec(w) for w in cfg.workloads]  # bad specs fail before any work
    given = _given_bundles(cfg.bundles)
    _validate(cfg)
    for spec in cfg.workloads:
        check_workload(spec)
    run_id = cfg.run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(cfg.out) / run_id  # created with its first record: a failed start leaves no empty folder
    if Path(cfg.out).resolve() not in out_dir.resolve().parents:
        raise UsageError(f"--run-id {run_id!r} must be a plain folder name inside --out {cfg.out}")
    for prefix in ("pocketbert-worker-", "pocketbert-bench-"):  # a killed run's temp folders
        clean_leftovers(Path(tempfile.gettempdir()), prefix, log, temp_suffix=True)
    cache = Path(cfg.bundle_cache or Path(cfg.out) / "bundles")

    machine = device.info()
    threads = cfg.threads or machine.get("default_threads") or threads  # a phone: its big cores
    log(f"machine: {machine['cpu_model']}, {machine['physical_cores']} cores, load {machine['load_avg_1m']}; "
        f"threads {threads}")
    gemm = device.run_worker(WorkerSpec(kind="gemm", threads=threads))
    peak = gemm.get("gemm_peak_gflops")
    log(f"fp32 GEMM peak at {threads} threads: {peak:.0f} GFLOP/s" if peak else f"GEMM peak failed: {gemm}")
    common = {"schema": Record.SCHEMA, "run_id": run_id, "threads": threads, "warmup": cfg.warmup,
              "batch_size": 1, "gemm_peak_gflops": peak, "machine": machine,
              "versions": library_versions(), "git_revision": git_revision()}

    written = 0
    try:
        with tempfile.TemporaryDirectory(prefix=f"pocketbert-bench-{os.getpid()}-") as work:
            for spec, (kind, _) in zip(cfg.workloads, kinds):
                for model, runs in _plan(cfg, kind, given).items():
                    workload = load_workload(spec, _tokenizer_for(model, cfg.tokenizer, runs), cfg.seq_len, cfg.limit)
                    items_path = Path(work) / f"items-{written}-{workload.name}.json"  # what every worker reads
                    save_items(workload.items, items_path)
                    facts = _model_facts(model, runs[0].task, runs)
                    log(f"{model} on {workload.name} ({len(workload.items)} items, {runs[0].task})")
                    for run in runs:
                        rec = run_one(run, workload, items_path, facts, cfg, threads, cache, device, common, log)
                        rec = Record.from_dict(rec, "record").to_dict()  # the typed contract, checked
                        out_dir.mkdir(parents=True, exist_ok=True)
                        write_json(out_dir / _record_name(rec), rec)
                        written += 1
                        log("  " + one_line(rec))
    except KeyboardInterrupt:
        log(f"interrupted: {written} record(s) kept in {out_dir}")
        raise
    if cfg.report and written:
        from bench.report import render_report

        render_report([out_dir], out_dir)
        log(f"report: {out_dir / 'report.md'}")
    return out_dir


def _record_name(rec: dict[str, Any]) -> str:
    from bench.records import record_name

    return record_name(rec)


def _validate(cfg: BenchConfig) -> None:
    from pocketbert.backends import all_precisions, get_backend

    for r in cfg.runtimes:
        get_backend(r, "runtime")
    for p in cfg.precisions:
        lookup({p: p for p in all_precisions()}, p, "precision")
    for s in cfg.shapes:
        lookup({s: s for s in SHAPES}, s, "shape")
    if cfg.seq_len < 16 or cfg.seq_len > 512:
        raise UsageError(f"--seq-len {cfg.seq_len} out of range: use 16..512")
    if cfg.threads is not None and cfg.threads < 1:
        raise UsageError("--threads must be at least 1")
    if not cfg.bundles:
        from pocketbert.models import PRESETS

        for m in cfg.models:
            if m not in PRESETS and not Path(m).expanduser().is_dir():
                raise UsageError(f"model '{m}' is neither a preset ({', '.join(PRESETS)}) nor a folder")


def _given_bundles(paths: list[Path]) -> list[tuple[Path, dict]]:
    """Existing bundles to run (each verified against its sha256 now: fail before any timing)."""
    from export.bundle import find_bundles, read_manifest

    out = []
    for p in paths:
        found = find_bundles(Path(p))
        if not found:
            raise UsageError(f"no bundle (manifest.json) at {p} or in its subfolders")
        out += [(b, read_manifest(b, verify=True)) for b in found]
    return out


def _plan(cfg: BenchConfig, kind, given: list[tuple[Path, dict]]) -> dict[str, list[Run]]:
    """model -> its runs for one workload kind, in a stable order."""
    plan: dict[str, list[Run]] = {}
    if given:
        for bundle, m in given:
            if kind.task and m["task"] != kind.task:
                continue  # e.g. a QA bundle has nothing to do on STS-B
            model = m["source"].removeprefix("preset:")
            for shape in cfg.shapes:
                plan.setdefault(model, []).append(Run(model, m["task"], m["target"], m["precision"], shape, bundle))
        return plan
    task = kind.task or "question-answering"
    for model in cfg.models:
        plan[model] = [Run(model, task, r, p, s) for r in cfg.runtimes for p in cfg.precisions
                       for s in cfg.shapes]
    return plan


def _tokenizer_for(model: str, tokenizer: str | None, runs: list[Run]):
    from pocketbert.models import load_tokenizer

    if tokenizer:
        return load_tokenizer(tokenizer)
    bundle = next((r.bundle for r in runs if r.bundle), None)
    if bundle:
        return load_tokenizer(bundle)
    return load_tokenizer(model if Path(model).expanduser().is_dir() else None)


def _model_facts(model: str, task: str, runs: list[Run]) -> dict[str, Any]:
    """Parameter counts and config of the model (from a bundle's manifest when there is one)."""
    bundle = next((r.bundle for r in runs if r.bundle), None)
    if bundle:
        from export.bundle import read_manifest

        m = read_manifest(bundle, verify=False)
        return {"parameters": m["parameters"], "config": m["config"] if "vocab_size" in m["config"]
                else _config_from_folder(bundle), "model_type": m["model_type"],
                "input_names": [i["name"] for i in m["inputs"]]}
    from pocketbert.models import count_parameters, load_model

    loaded = load_model(model, task)
    return {"parameters": count_parameters(loaded.model), "config": loaded.model.config.to_dict(),
            "model_type": loaded.model_type, "input_names": loaded.input_names}


def _config_from_folder(bundle: Path) -> dict:
    import json

    p = Path(bundle) / "config.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def run_one(run: Run, workload, items_path: Path, facts: dict, cfg: BenchConfig, threads: int,
            cache: Path, device, common: dict, log=print) -> dict[str, Any]:
    """One record: skipped (with the reason), failed (with the error) or measured."""
    from bench.flops import forward_flops
    from bench.records import derive
    from pocketbert.backends import get_backend
    from pocketbert.contracts import WorkerSpec

    rt = get_backend(run.runtime)
    rec: dict[str, Any] = {**common, "status": "ok", "reason": "", "model": run.model,
                           "model_type": facts["model_type"], "task": run.task, "runtime": run.runtime,
                           "precision": run.precision, "workload": workload.name,
                           "workload_source": workload.source, "shape": run.shape, "seq_len": cfg.seq_len,
                           "parameters": facts["parameters"],
                           "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def skip(why: str, status: str = "skipped") -> dict[str, Any]:
        rec.update(status=status, reason=why)
        return rec

    ok, why = device.available(run.runtime)
    if not ok:
        return skip(f"{run.runtime} {why}")
    if run.precision not in rt.precisions:
        return skip(f"{run.runtime} has no {run.precision} (supports {', '.join(rt.precisions)})")
    if run.shape == "dynamic" and not rt.dynamic_shapes:
        return skip(f"{run.runtime} runs fixed shapes only")

    spec = WorkerSpec(kind="run", runtime=run.runtime, precision=run.precision, model=run.model, task=run.task,
                      items_path=str(items_path), shape=run.shape, seq_len=cfg.seq_len, threads=threads,
                      warmup=cfg.warmup, overhead_check=cfg.overhead_check, quiet=cfg.quiet,
                      label=f"{run.model} {run.runtime}-{run.precision} {run.shape}",
                      input_names=facts["input_names"])
    if rt.makes_bundles:
        try:
            bundle = run.bundle or _ensure(run, cfg, cache, log)
            from export.bundle import read_manifest

            manifest = read_manifest(bundle, verify=True)
        except UsageError as e:
            return skip(f"bundle: {e}", status="failed")
        except Exception as e:  # noqa: BLE001 - an exporter crash fails this run, not the study
            return skip(f"export failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                        status="failed")
        if run.shape == "dynamic" and not manifest.get("dynamic_seq"):
            return skip("bundle has fixed sequence lengths only")
        rec["seq_len"] = seq_len = int(manifest["seq_len"])
        spec.model_path, spec.seq_len = str(bundle / manifest["model_file"]), seq_len
        spec.input_names = [i["name"] for i in manifest["inputs"]]
        rec["bundle"] = str(bundle)
        rec["model_file_bytes"] = manifest["files"][manifest["model_file"]]["bytes"]

    result = device.run_worker(spec, timeout_s=cfg.timeout_s)
    if "error" in result:
        return skip(result["error"], status="failed")
    if "record" in result:  # the device recorded the run itself (the phone app, minibench, a runner)
        return _device_record(rec, result, facts["config"], run.task)

    lengths = [[len(f["input_ids"]) for f in item.features] for item in workload.items]
    fed = [[rec["seq_len"] if run.shape == "fixed" else n for n in item] for item in lengths]
    config = facts["config"]
    rec.update({
        "threads_effective": result.get("threads_effective"),
        "model_file_bytes": rec.get("model_file_bytes", result.get("model_bytes")),
        "load_ms": result["load_ms"], "first_inference_ms": result["first_inference_ms"],
        "n_items": len(workload.items), "n_model_calls": sum(len(x) for x in lengths),
        "item_ids": [item.id for item in workload.items],
        "latency_ms": result["latency_ms"], "tokenize_ms": [item.tokenize_ms for item in workload.items],
        "postprocess_ms": result["postprocess_ms"],
        "tokens": {"real": sum(map(sum, lengths)), "fed": sum(map(sum, fed))},
        "flops_total": sum(forward_flops(config, n, run.task) for item in fed for n in item),
        "peak_rss_mb": result["peak_rss_mb"], "baseline_rss_mb": result["baseline_rss_mb"],
        "runtime_rss_mb": result["peak_rss_mb"] - result["baseline_rss_mb"],
        "harness_overhead": ({"timed_loop_s": result["loop_s"], "postprocess_s": sum(result["postprocess_ms"]) / 1e3,
                              "timed_model_s": sum(result["latency_ms"]) / 1e3, "bare_loop_s": result["bare_loop_s"],
                              "null_loop_s": result.get("null_loop_s")}
                             if result.get("bare_loop_s") else None),
        "answers_sample": result.get("answers_sample", []),
        "device_state": result.get("device_state"),  # remote devices: governor/temperatures before and after
    })
    rec["flops_per_item_mean"] = rec["flops_total"] / len(workload.items)
    if threads != result.get("threads_effective"):
        rec["reason"] = f"warning: asked {threads} threads, runtime reports {result.get('threads_effective')}"
    if (rec["device_state"] or {}).get("warnings"):
        rec["reason"] = "; ".join(filter(None, [rec["reason"], "warning: " + "; ".join(rec["device_state"]["warnings"])]))
    return derive(rec)


# What a device-made record decides; the host keeps identity and provenance (model, machine, versions...).
DEVICE_FIELDS = ("shape", "seq_len", "warmup", "threads_effective", "item_ids", "latency_ms", "tokenize_ms",
                 "postprocess_ms", "load_ms", "first_inference_ms", "n_items", "n_model_calls", "tokens",
                 "peak_rss_mb", "baseline_rss_mb", "runtime_rss_mb", "answers_sample", "notes")


def _device_record(rec: dict[str, Any], result: dict[str, Any], config: dict, task: str) -> dict[str, Any]:
    """Merge a record made on the device (samples, its own tokenization, what it could not measure)."""
    from bench.flops import forward_flops
    from bench.records import derive

    dev = result["record"]
    rec.update({k: dev[k] for k in DEVICE_FIELDS if k in dev})
    if dev.get("workload") not in (None, "host-items"):  # e.g. minibench's all-ones inputs, not the host's items
        rec["workload"], rec["workload_source"] = dev["workload"], dev.get("workload_source", "")
    rec["versions"] = {**rec["versions"], **dev.get("versions", {})}
    state = result.get("device_state") or {}
    rec["notes"] = {**rec.get("notes", {}), "device_state": state} if state else rec.get("notes", {})
    rec["reason"] = "; ".join(x for x in (dev.get("reason"), *state.get("warnings", [])) if x)
    calls, fed = rec.get("n_model_calls") or 0, (rec.get("tokens") or {}).get("fed") or 0
    if calls and fed:  # from the mean window length: the device reports totals, not every window
        rec["flops_total"] = forward_flops(config, round(fed / calls), task) * calls
        rec["flops_per_item_mean"] = rec["flops_total"] / max(rec.get("n_items") or 1, 1)
    return derive(rec)


def _ensure(run: Run, cfg: BenchConfig, cache: Path, log) -> Path:
    from bench.bundles import ensure_bundle

    t0 = time.perf_counter()
    path = ensure_bundle(cache, run.model, run.task, run.runtime, run.precision,
                         cfg.seq_len, cfg.tokenizer, cfg.onnx_optimize, log=log)
    if time.perf_counter() - t0 > 1:
        log(f"  exported {path} in {time.perf_counter() - t0:.0f} s")
    return path


def one_line(rec: dict[str, Any]) -> str:
    """A record as one human line for the console."""
    head = f"{rec['runtime']:<10} {rec['precision']:<5} {rec['shape']:<7}"
    if rec["status"] != "ok":
        return f"{head} {rec['status']}: {rec['reason']}"
    s = rec["stats"]["latency_ms"]
    frac = rec.get("fraction_of_peak")
    rss = f"{rec['peak_rss_mb']:6.0f} MB" if rec.get("peak_rss_mb") is not None else "     – MB"  # not every device says
    return (f"{head} p50 {s['p50']:8.2f} ms  p90 {s['p90']:8.2f} ms  total {rec['total_model_s']:7.2f} s  "
            f"rss {rss}  {rec.get('achieved_gflops') or 0:6.1f} GFLOP/s"
            + (f" ({frac:.0%} of the fp32 GEMM peak)" if frac else ""))

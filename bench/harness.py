"""`run_bench`: the benchmark pipeline, top to bottom.

  validate the plan -> machine info -> per workload and model: tokenize once -> per runtime x
  precision x shape: bundle (exported on demand, sha256-verified, all before any timing)
  -> `rounds` times, the runs in a rotated order: worker subprocess on the Device (its own GEMM
  probes and /proc CPU accounting around the timed loop; a noisy one is retried `retries` times)
  -> one record per run after its last round, judged (bench.trust) and written atomically
  -> report rendered from the records.
With --bundle, given bundles and plain model files (.onnx / .pte, optimum-cli folders: see
bench.bundles.read_plain_file) are grouped by tokenizer, so ours and a peer's file share items and rounds.
Library output of the parent (exports, model loading) and of every worker goes to
<run>/bench.log; the console gets the tool's own lines and the workers' progress bars.
Ctrl-C stops the running worker; every record already written stays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.bundles import (
    bundle_dir,
    cache_state,
    ensure_bundle,
    export_missing,
    find_plain_files,
    peer_labels,
    plain_file_error,
    read_plain_file,
    verify_plain_file,
)
from bench.devices.local import LocalDevice
from bench.flops import forward_flops
from bench.machine import probe_program_path
from bench.model_probe import UnreadableModel
from bench.records import derive, record_name
from bench.report import render_report
from bench.trust import judge, robust_cv, summary
from bench.workloads import Item, answer_quality, check_workload, load_workload, parse_spec, save_items
from export.bundle import find_bundles, read_manifest
from export.coverage import delegation_fields
from export.targets import all_targets
from pocketbert.backends import all_precisions, get_runtime, main_job, plain_suffixes, runtime_names
from pocketbert.claims import claim_run_folder
from pocketbert.common import UsageError, clean_leftovers, git_revision, library_versions, lookup, write_json
from pocketbert.contracts import Record, WorkerSpec
from pocketbert.machine import physical_cores
from pocketbert.models import PRESETS, count_parameters, load_model, load_tokenizer

SHAPES = ("fixed", "dynamic")


@dataclass
class BenchConfig:
    models: list[str] = field(default_factory=lambda: ["distilbert-base"])  # presets or HF folders
    runtimes: list[str] | None = None  # None: every registered runtime (both None: the main-job pairs)
    precisions: list[str] | None = None  # None: DEFAULT_PRECISIONS (both None: the main-job pairs)
    workloads: list[str] = field(default_factory=lambda: ["synthetic"])  # runs with nothing downloaded
    shapes: list[str] = field(default_factory=lambda: list(SHAPES))  # padded (mobile-style) and real length
    seq_len: int = 384  # the SQuAD window: padded 384 vs real length (~160) is the 2-3x an app can win
    threads: int | None = None  # None: all physical cores; the same count for every runtime
    warmup: int = 3  # untimed runs after the first inference: caches, pools, lazy init
    limit: int | None = None  # first N items of the workload (None: all; synthetic default 32)
    tokenizer: str | None = None  # vocab.txt/folder for presets: real token lengths (default: generated vocab)
    out: Path = Path("results")  # records go to out/<run_id>/
    run_id: str | None = None  # default: UTC timestamp; reuse one to add records to a run
    bundle_cache: Path | None = None  # exported bundles are cached here (default: out/bundles)
    bundles: list[Path] = field(default_factory=list)  # run these bundles / plain .onnx .pte files instead of exporting
    task: str | None = None  # plain model files whose outputs do not tell their task (None: read from the outputs)
    onnx_optimize: bool = False  # export ONNX through ORT's transformer fusion
    overhead_check: bool = False  # also time a bare loop to measure the harness's own overhead
    profile: bool = False  # each record also carries a per-operator profile (a pass after its timed loop)
    timeout_s: float | None = None  # per worker; None: no limit
    rounds: int = 1  # visit the runs of a comparison this many times in rotated order; records keep the median
    retries: int = 0  # re-run a worker whose record is noisy up to this many times (--strict: 2)
    pace_retries: int = 1  # ...and at least this many when /proc saw no one else: the pace moved alone
    # (a quiet 2-vCPU VM's GEMM pace moves 20-35% for a second or more: 3 of 12 quiet main-job
    # records); a shared machine stays shared, so those wait for --retries/--strict
    report: bool = True  # render report.md / results.csv / plots at the end
    quiet: bool = False  # no progress bars (tests, CI logs)
    overwrite: bool = False  # add to an existing run folder (else an existing --run-id is refused)


DEFAULT_PRECISIONS = ("fp32", "int8")  # the paper's fp32 + the phone's int8
# The main job (no --runtime, no --precision): each runtime's `main_job` precisions (Runtime.main_job):
# what the report's three opening lines need, in ~3 min on 2 vCPUs (the install before it takes 2-3):
# the reference, int8 vs fp32 in one runtime, and the int8 formats a phone ships. Everything else is
# one flag away: --runtime/--precision run every runtime x precision asked for.


def run_pairs(cfg: BenchConfig) -> list[tuple[str, str]]:
    """The (runtime, precision) pairs `cfg` asks for: the main job when it names neither, else every
    runtime (default: all registered) x every precision (default: DEFAULT_PRECISIONS)."""
    if cfg.runtimes is None and cfg.precisions is None:
        return main_job()
    return [(r, p) for r in cfg.runtimes or runtime_names() for p in cfg.precisions or DEFAULT_PRECISIONS]


@dataclass
class Run:
    model: str
    task: str
    runtime: str
    precision: str
    shape: str
    bundle: Path | None = None  # a given bundle (bundles mode), or a plain file's folder; else exported on demand
    manifest: dict | None = None  # the given bundle's manifest, or the one derived from a plain file ("peer")


def run_bench(cfg: BenchConfig, device=None, log=print) -> Path:
    """Run the whole benchmark described by `cfg`; returns the folder of records. The run folder is
    claimed for the run (pocketbert.claims): a second run on the same --run-id is refused naming this
    one's pid, and one that already holds records only with `overwrite`."""
    cfg = dataclasses.replace(cfg, run_id=cfg.run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    out_dir = Path(cfg.out) / cfg.run_id
    if Path(cfg.out).resolve() not in out_dir.resolve().parents:
        raise UsageError(f"--run-id {cfg.run_id!r} must be a plain folder name inside --out {cfg.out}")
    with claim_run_folder(out_dir, overwrite=cfg.overwrite):
        return _run_bench(cfg, device, log)


def _run_bench(cfg: BenchConfig, device=None, log=print) -> Path:
    device = device or LocalDevice()
    threads = cfg.threads or physical_cores()
    kinds = [parse_spec(w) for w in cfg.workloads]  # bad specs fail before any work
    unreadable: list[tuple[Path, str, str]] = []  # model files the runtime cannot open: failed records
    given = _given_bundles(cfg.bundles, cfg, unreadable)
    _validate(cfg)
    for spec in cfg.workloads:
        check_workload(spec)
    run_id = cfg.run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(cfg.out) / run_id  # created when first written to: a failed start leaves no empty folder
    if Path(cfg.out).resolve() not in out_dir.resolve().parents:
        raise UsageError(f"--run-id {run_id!r} must be a plain folder name inside --out {cfg.out}")
    for prefix in ("pocketbert-worker-", "pocketbert-bench-"):  # a killed run's temp folders
        clean_leftovers(Path(tempfile.gettempdir()), prefix, log, temp_suffix=True)
    cache = Path(cfg.bundle_cache or Path(cfg.out) / "bundles")
    log_path = out_dir / "bench.log"

    machine = device.info()
    cores = machine.get("logical_cores") or machine.get("physical_cores")
    if cfg.threads and isinstance(cores, int) and cfg.threads > cores:  # 999 threads on 2 cores: no progress
        raise UsageError(f"--threads {cfg.threads} is more than the {cores} cores of {machine.get('device', 'local')}: "
                         f"use --threads {cores} or less")
    threads = cfg.threads or machine.get("default_threads") or threads  # a phone: its big cores
    log(f"machine: {machine['cpu_model']}, {machine['physical_cores']} cores, load {machine['load_avg_1m']}; "
        f"threads {threads}" + (f"; {cfg.rounds} rounds" if cfg.rounds > 1 else ""))
    log(f"library output (warnings, C++ logging): {log_path}")
    common = {"schema": Record.SCHEMA, "run_id": run_id, "threads": threads, "warmup": cfg.warmup,
              "batch_size": 1, "machine": machine, "versions": library_versions(), "git_revision": git_revision()}

    written = 0

    def write(rec: dict) -> None:
        rec = Record.from_dict(rec, "record").to_dict()  # the typed contract, checked
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / _record_name(rec), rec)
        log("  " + one_line(rec))

    for path, label, reason in unreadable:  # one failed record each; the other files still run
        write({**common, "model": label, "runtime": plain_suffixes()[path.suffix].name, "precision": "unknown",
               "workload": kinds[0][0].name, "shape": cfg.shapes[0], "status": "failed", "reason": reason,
               "bundle": str(path), "task": cfg.task or "question-answering"})
        written += 1
    with quiet_output(log_path):  # tokenizer loading chatter
        groups = _tokenizer_groups(cfg, given)
    for _, m in given:
        if not any(k.task in (None, m["task"]) for k, _ in kinds):
            log(f"{m['source']}: a {m['task']} model, and no --workload of that task: not timed")
    try:
        with tempfile.TemporaryDirectory(prefix=f"pocketbert-bench-{os.getpid()}-") as work:
            todo = list(zip(cfg.workloads, kinds)) if given or not cfg.bundles else []  # all given unreadable
            for spec, (kind, _) in todo:
                for model, runs in _plan(cfg, kind, given, groups).items():
                    loaded: list = []  # the workload, tokenized while the exports run (~5 s of imports)

                    def tokenize(spec=spec, model=model, runs=runs):
                        with quiet_output(log_path):  # tokenizer loading chatter
                            loaded.append(load_workload(spec, _tokenizer_for(model, cfg.tokenizer, runs),
                                                        cfg.seq_len, cfg.limit))

                    # exports first: the model's facts then come from a bundle's manifest (no model build)
                    export_missing(cache, _exports_needed(runs, cfg, device), jobs=min(physical_cores(), 4),
                                   log_path=log_path, log=log, progress=not cfg.quiet, meanwhile=tokenize)
                    [workload] = loaded
                    with quiet_output(log_path):  # model loading chatter
                        facts = {m: _model_facts(m, runs[0].task, [r for r in runs if r.model == m], cfg, cache)
                                 for m in dict.fromkeys(r.model for r in runs)}  # per model: peers have their own
                    items_path = Path(work) / f"items-{written}-{workload.name}.json"  # what every worker reads
                    save_items(workload.items, items_path)
                    log(f"{model} on {workload.name} ({len(workload.items)} items, {runs[0].task}, "
                        f"seq {cfg.seq_len})")
                    planned = []
                    for run in runs:  # skips, failures and every export first: nothing heavy between timings
                        rec, worker_spec, item_flops = prepare(run, workload, items_path, facts[run.model], cfg, threads,
                                                               cache, device, common, log_path, log)
                        if worker_spec is None:
                            write(rec)
                            written += 1
                        else:
                            planned.append((rec, worker_spec, item_flops))
                    results: list[list[dict]] = [[] for _ in planned]
                    failed: set[int] = set()
                    for r in range(cfg.rounds):
                        for i in rotated(len(planned), r, cfg.rounds):
                            if i in failed:
                                continue
                            rec, worker_spec, item_flops = planned[i]
                            result = measure(worker_spec, rec, cfg, threads, device, log_path, log)
                            if "error" in result:
                                failed.add(i)
                                write({**rec, "status": "failed", "reason": result["error"]})
                                written += 1
                                continue
                            if "record" in result:  # the device recorded the run itself (phone app, minibench)
                                failed.add(i)  # nothing to add in later rounds: its own record stands
                                write(_device_record(rec, result, facts[rec["model"]]["config"], rec["task"]))
                                written += 1
                                continue
                            results[i].append({**result, "round": r + 1, "position": rotated(
                                len(planned), r, cfg.rounds).index(i) + 1})
                            if r == cfg.rounds - 1:
                                write(finish(rec, results[i], item_flops, workload.items))
                                written += 1
    except KeyboardInterrupt:
        log(f"interrupted: {written} record(s) kept in {out_dir}")
        raise
    if cfg.report and written:
        with quiet_output(log_path):
            render_report([out_dir], out_dir)
        log(f"report: {out_dir / 'report.md'}")
    return out_dir


def rotated(n: int, r: int, rounds: int) -> list[int]:
    """The run indices in round r's order: each round starts a fraction `r / rounds` further along
    (one run further when there are fewer runs than rounds), so over the rounds every runtime is
    visited early, late and in between (drift hits all alike)."""
    if not n:
        return []
    k = r % n if n <= rounds else (r * n) // rounds
    return list(range(k, n)) + list(range(k))


@contextlib.contextmanager
def quiet_output(log_path: Path):
    """Within: this process's stdout/stderr file descriptors (C/C++ logging, Python warnings) append
    to `log_path`; `print` still reaches the console when stdout is a real file descriptor."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    console = None
    try:
        if sys.stdout.fileno() == 1:
            console = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    except (AttributeError, OSError, ValueError):  # stdout replaced (tests, notebooks): leave it
        pass
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        if console is not None:
            with contextlib.redirect_stdout(console):
                yield
        else:
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in saved:
            os.close(f)
        if console is not None:
            console.close()


def _append_log(log_path: Path, header: str, text: str) -> None:
    if text:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as f:
            f.write(f"===== {header}\n{text}\n")


def _record_name(rec: dict[str, Any]) -> str:
    return record_name(rec)


def _validate(cfg: BenchConfig) -> None:
    for r, p in run_pairs(cfg):
        get_runtime(r)
        lookup({p: p for p in all_precisions()}, p, "precision")
    for s in cfg.shapes:
        lookup({s: s for s in SHAPES}, s, "shape")
    if cfg.seq_len < 16 or cfg.seq_len > 512:
        raise UsageError(f"--seq-len {cfg.seq_len} out of range: use 16..512")
    if cfg.threads is not None and cfg.threads < 1:
        raise UsageError("--threads must be at least 1")
    if not cfg.bundles:
        for m in cfg.models:
            if m not in PRESETS and not Path(m).expanduser().is_dir():
                raise UsageError(f"model '{m}' is neither a preset ({', '.join(PRESETS)}) nor a folder")


def _given_bundles(paths: list[Path], cfg: BenchConfig | None = None,
                   unreadable: list | None = None) -> list[tuple[Path, dict]]:
    """Existing bundles and plain model files to run, each verified now (a bundle against its
    manifest's sha256; a plain file read and hashed, see bench.bundles.read_plain_file): every
    bad path fails in one line before any timing, except a model file the runtime cannot open
    (bench.model_probe): with `unreadable`, that one is listed there as (path, label, reason)."""
    out, plain = [], []
    for p in map(Path, paths):
        found = find_bundles(p) if p.is_dir() else []
        if found:
            out += [(b, read_manifest(b, verify=True)) for b in found]
            continue
        files = find_plain_files(p)  # a file itself (its suffix is checked when read), or a folder's
        if not files:
            raise UsageError(plain_file_error(p))
        plain += [f for f in files if f not in plain]
    labels = peer_labels(plain)
    task = cfg.task if cfg else None
    seq_len = cfg.seq_len if cfg else 384
    for f in plain:
        try:
            out.append((f.parent, read_plain_file(f, task, labels, seq_len)))
        except UnreadableModel as e:
            if unreadable is None:
                raise
            unreadable.append((f, labels[f], " ".join(str(e).split())))
    return out


def _tokenizer_source(run_or_manifest, folder: Path | None = None) -> str | None:
    """Where a given bundle's or plain file's tokenizer lives (None: the generated vocab)."""
    m = run_or_manifest.manifest if isinstance(run_or_manifest, Run) else run_or_manifest
    if m and "peer" in m:
        return m["peer"]["tokenizer"]
    return str(folder if folder is not None else run_or_manifest.bundle)


def _tokenizer_groups(cfg: BenchConfig, given: list[tuple[Path, dict]]) -> list[str]:
    """One key per given bundle/file: entries whose tokenizers give the same tokens share a key, so
    they are fed the same items and timed in one rotation (ours next to a peer's file)."""
    import hashlib
    import json

    if cfg.tokenizer or not given:
        return ["--tokenizer"] * len(given)
    keys, seen = [], {}
    for folder, m in given:
        src = _tokenizer_source(m, folder)
        if src not in seen:
            tok = load_tokenizer(src)
            probe = tok("Hello, World! A naïve question?", "Its 42 answers.")
            seen[src] = hashlib.sha256(json.dumps([sorted(tok.get_vocab().items()), sorted(probe.keys()),
                                                   probe["input_ids"]]).encode()).hexdigest()
        keys.append(seen[src])
    return keys


def _plan(cfg: BenchConfig, kind, given: list[tuple[Path, dict]], groups: list[str] | None = None
          ) -> dict[str, list[Run]]:
    """group -> its runs for one workload kind, in a stable order. Given bundles and files are
    grouped by tokenizer (one group: one set of items, one rotation); exports by model."""
    plan: dict[str, list[Run]] = {}
    if given:
        by_group: dict[str, list[Run]] = {}
        for (bundle, m), key in zip(given, groups or [""] * len(given)):
            if kind.task and m["task"] != kind.task:
                continue  # e.g. a QA bundle has nothing to do on STS-B
            model = m["source"].removeprefix("preset:")
            for shape in cfg.shapes:
                by_group.setdefault(key, []).append(
                    Run(model, m["task"], _runtime_for(m), m["precision"], shape, bundle, m))
        for runs in by_group.values():
            plan[" + ".join(dict.fromkeys(r.model for r in runs))] = runs
        return plan
    task = kind.task or "question-answering"
    for model in cfg.models:
        plan[model] = [Run(model, task, r, p, s) for r, p in run_pairs(cfg) for s in cfg.shapes]
    return plan


def _tokenizer_for(model: str, tokenizer: str | None, runs: list[Run]):
    if tokenizer:
        return load_tokenizer(tokenizer)
    given = next((r for r in runs if r.bundle), None)
    if given:
        return load_tokenizer(_tokenizer_source(given))
    return load_tokenizer(model if Path(model).expanduser().is_dir() else None)


def _model_facts(model: str, task: str, runs: list[Run], cfg: BenchConfig | None = None,
                 cache: Path | None = None) -> dict[str, Any]:
    """Parameter counts and config of the model: from a given bundle's manifest, else from a bundle
    the bench exported for it (building a preset model in this process costs ~6 s of imports), else
    from the model itself."""
    def from_manifest(m: dict, folder: Path) -> dict[str, Any]:
        return {"parameters": m["parameters"], "config": m["config"] if "vocab_size" in m["config"]
                else _config_from_folder(folder), "model_type": m["model_type"],
                "input_names": [i["name"] for i in m["inputs"]]}

    given = next((r for r in runs if r.bundle), None)
    if given:
        return from_manifest(given.manifest or read_manifest(given.bundle, verify=False), given.bundle)
    if cfg is not None and cache is not None:
        for r in runs:
            target = get_runtime(r.runtime).bundle_target
            if target is None:  # it runs the model itself: no bundle to read
                continue
            folder = bundle_dir(cache, model, task, target, r.precision, cfg.seq_len, cfg.onnx_optimize)
            if (folder / "manifest.json").is_file() and not cache_state(folder, model, task, cfg.seq_len,
                                                                       cfg.tokenizer, cfg.onnx_optimize):
                return from_manifest(read_manifest(folder, verify=False), folder)

    loaded = load_model(model, task)
    return {"parameters": count_parameters(loaded.model), "config": loaded.model.config.to_dict(),
            "model_type": loaded.model_type, "input_names": loaded.input_names}


def _config_from_folder(bundle: Path) -> dict:
    import json

    p = Path(bundle) / "config.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def prepare(run: Run, workload, items_path: Path, facts: dict, cfg: BenchConfig, threads: int,
            cache: Path, device, common: dict, log_path: Path, log=print):
    """A run's record so far and its worker spec (exported bundle verified), or (record, None, None)
    when it is skipped (with the reason) or failed before any timing (export error)."""
    rt = get_runtime(run.runtime)
    rec: dict[str, Any] = {**common, "status": "ok", "reason": "", "model": run.model,
                           "model_type": facts["model_type"], "task": run.task, "runtime": run.runtime,
                           "precision": run.precision, "workload": workload.name,
                           "workload_source": workload.source, "shape": run.shape, "seq_len": cfg.seq_len,
                           "parameters": facts["parameters"], "rounds": cfg.rounds,
                           "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def skip(why: str, status: str = "skipped"):
        rec.update(status=status, reason=why)
        return rec, None, None

    ok, why = device.available(run.runtime)
    if not ok:
        return skip(f"{run.runtime} {why}")
    peer = (run.manifest or {}).get("peer")  # a plain file: the backend runs it whatever its precision
    if run.precision not in rt.precisions and not peer:
        return skip(f"{run.runtime} has no {run.precision} (supports {', '.join(rt.precisions)})")
    if run.shape == "dynamic" and not rt.dynamic_shapes:
        return skip(f"{run.runtime} runs fixed shapes only")

    spec = WorkerSpec(kind="run", runtime=run.runtime, precision=run.precision, model=run.model, task=run.task,
                      items_path=str(items_path), shape=run.shape, seq_len=cfg.seq_len, threads=threads,
                      warmup=cfg.warmup, overhead_check=cfg.overhead_check, quiet=cfg.quiet,
                      label=f"{run.model} {run.runtime}-{run.precision} {run.shape}",
                      input_names=facts["input_names"], remeasure=cfg.pace_retries, profile=cfg.profile)
    if rt.bundle_target:
        try:
            with quiet_output(log_path):  # exporter warnings and C++ logging
                if peer:
                    bundle, manifest = run.bundle, run.manifest
                    verify_plain_file(manifest)
                else:
                    bundle = run.bundle or _ensure(run, cfg, cache, log)

                    manifest = read_manifest(bundle, verify=True)
        except UsageError as e:
            return skip(f"bundle: {e}", status="failed")
        except Exception as e:  # noqa: BLE001 - an exporter crash fails this run, not the study
            return skip(f"export failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                        status="failed")
        if run.shape == "dynamic" and not manifest.get("dynamic_seq"):
            return skip(f"{peer['label']} takes a fixed input shape {manifest['inputs'][0]['shape']}: it runs "
                        "padded (fixed) only" if peer else "bundle has fixed sequence lengths only")
        rec["seq_len"] = seq_len = int(manifest["seq_len"])
        spec.model_path, spec.seq_len = str(bundle / manifest["model_file"]), seq_len
        probe = probe_program_path(cache, run.runtime, run.precision)
        if probe is not None:  # the runtime's own GEMM probe (Runtime.probe), made by the export step
            spec.probe_program = str(probe) if probe.is_file() else ""
        spec.input_names = [i["name"] for i in manifest["inputs"]]
        rec["bundle"] = str(bundle)
        rec["model_file_bytes"] = manifest["files"][manifest["model_file"]]["bytes"]
        rec.update(delegation_fields(manifest))  # the manifest's coverage, for the report's "delegated" column
        if peer:
            why = _peer_problem(manifest, run, workload)
            if why:
                return skip(why)
            rec["bundle"] = peer["file"]
            rec["notes"] = {"peer": {**peer, "sha256": manifest["files"][manifest["model_file"]]["sha256"],
                                     "inputs": manifest["inputs"], "outputs": manifest["outputs"]}}
            spec.items_path = str(_items_as(manifest, workload, items_path))

    lengths = [[len(f["input_ids"]) for f in item.features] for item in workload.items]
    fed = [[rec["seq_len"] if run.shape == "fixed" else n for n in item] for item in lengths]
    try:
        item_flops = [sum(forward_flops(facts["config"], n, run.task) for n in item) for item in fed]
    except ValueError:  # a plain file with no config.json beside it: sizes unknown, so no FLOPs
        item_flops = [0] * len(fed)
    flops = sum(item_flops) or None
    rec.update({"n_items": len(workload.items), "n_model_calls": sum(len(x) for x in lengths),
                "item_ids": [item.id for item in workload.items],
                "tokenize_ms": [item.tokenize_ms for item in workload.items],
                "tokens": {"real": sum(map(sum, lengths)), "fed": sum(map(sum, fed))},
                "flops_total": flops, "flops_per_item_mean": flops / len(workload.items) if flops else None})
    return rec, spec, item_flops


def _runtime_for(manifest: dict) -> str:
    """The runtime that loads a given bundle (its target's `runtime`) or plain file (named as such)."""
    target = all_targets().get(manifest["target"])
    return target.runs_on if target else manifest["target"]


def _peer_problem(manifest: dict, run: Run, workload) -> str:
    """Why a plain file cannot run this workload as given (one line), or ''."""
    label = manifest["peer"]["label"]
    rt = get_runtime(run.runtime)
    wrong = [f"{i['name']} {i['dtype']}" for i in manifest["inputs"] if i["dtype"] not in rt.feeds]
    if wrong:
        return f"{label} takes {', '.join(wrong)}; the {rt.label or rt.name} backend feeds {'/'.join(rt.feeds)} ids"
    longest = max(len(f["input_ids"]) for item in workload.items for f in item.features)
    if not manifest["dynamic_seq"] and longest > manifest["seq_len"]:
        return (f"{label} takes exactly {manifest['seq_len']} tokens and the workload has inputs of {longest}: "
                f"use --seq-len {manifest['seq_len']}")
    return ""


def _items_as(manifest: dict, workload, items_path: Path) -> Path:
    """The workload's items keyed by the file's own input names (a feature the tokenizer does not
    give, e.g. token_type_ids for a DistilBERT tokenizer, is zeros): what its worker reads."""
    import hashlib
    import json

    pairs = [(i["name"], i["feature"]) for i in manifest["inputs"]]
    if all(name == feature for name, feature in pairs) and all(
            feature in f for _, feature in pairs for item in workload.items[:1] for f in item.features):
        return items_path
    path = items_path.with_name(f"{items_path.stem}-as-{hashlib.sha1(json.dumps(pairs).encode()).hexdigest()[:10]}.json")
    if not path.exists():
        save_items([Item(item.id, [{name: f.get(feature) or [0] * len(f["input_ids"]) for name, feature in pairs}
                                   for f in item.features], item.tokenize_ms, item.post)
                    for item in workload.items], path)
    return path


def measure(spec, rec: dict, cfg: BenchConfig, threads: int, device, log_path: Path, log=print) -> dict:
    """One worker run, judged; a noisy one is run again up to `cfg.retries` times. When only the pace
    moved, the worker itself re-timed its loop up to `cfg.pace_retries` times (WorkerSpec.remeasure:
    no re-import, no reload); a fresh worker makes up any it could not (the last is kept)."""
    cores = rec["machine"].get("logical_cores") or rec["machine"].get("physical_cores")
    attempt, allowed = 0, cfg.retries
    while True:
        result = device.run_worker(spec, timeout_s=cfg.timeout_s)
        _append_log(log_path, f"{spec.label} (round worker, attempt {attempt + 1})", result.pop("log", ""))
        if "error" in result or "record" in result:
            return result
        trust = result.setdefault("trust", {})
        model_s = sum(result["latency_ms"]) / 1e3
        peak = trust.get("gemm_peak_gflops")
        flops = rec["flops_total"]
        trust["fraction_of_peak"] = flops / model_s / 1e9 / peak if peak and model_s and flops else None
        trust["attempt"] = attempt + 1
        judge(trust, cores, threads)
        for earlier in trust.get("remeasured") or []:
            log(f"  {spec.label}: noisy ({'; '.join(earlier['reasons'])}); re-timed in the same worker")
        if trust["noisy"] and not trust["shared"]:
            allowed = max(cfg.retries, attempt + cfg.pace_retries - len(trust.get("remeasured") or []))
        if not trust["noisy"] or attempt >= allowed:
            return result
        attempt += 1
        log(f"  {spec.label}: noisy ({'; '.join(trust['reasons'])}); retry {attempt}/{allowed}")


def finish(rec: dict, results: list[dict], item_flops: list[float], items: list | None = None) -> dict[str, Any]:
    """The record of a run from its rounds' worker results: per item, the median over the rounds (each
    round's raw samples kept); trust from every round; statistics derived."""
    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2

    first = results[0]
    latency = [med(col) for col in zip(*(r["latency_ms"] for r in results))]
    post = [med(col) for col in zip(*(r["postprocess_ms"] for r in results))]
    trusts = [r.get("trust", {}) for r in results]
    peaks = [t["gemm_peak_gflops"] for t in trusts if t.get("gemm_peak_gflops")]
    if len(results) == 1:
        trust = dict(trusts[0])
    else:
        totals = [sum(r["latency_ms"]) for r in results]
        trust = {"rounds": [{**t, "round": r["round"], "position": r["position"]} for t, r in zip(trusts, results)],
                 "rounds_spread": (max(totals) - min(totals)) / med(totals) if med(totals) else None,
                 "load_before": trusts[0].get("load_before"), "load_after": trusts[-1].get("load_after"),
                 "other_cpu_cores_max": max((t.get("other_cpu_cores") or 0 for t in trusts), default=None),
                 "steal_pct_max": max((t.get("steal_pct") or 0 for t in trusts), default=None),
                 "gemm_peak_gflops": max(peaks) if peaks else None, "peak_kind": trusts[0].get("peak_kind"),
                 "gemm_library": trusts[0].get("gemm_library")}
    trust["cv"] = robust_cv([lat / f for lat, f in zip(latency, item_flops) if f])  # latency per FLOP
    rss_peak = max(r["peak_rss_mb"] for r in results)
    imports = [r["import_ms"] for r in results if r.get("import_ms") is not None]  # boards' older workers: none
    rec = {**rec, "threads_effective": first.get("threads_effective"),
           "model_file_bytes": rec.get("model_file_bytes", first.get("model_bytes")),
           "import_ms": med(imports) if imports else None,
           "load_ms": med([r["load_ms"] for r in results]),
           "first_inference_ms": med([r["first_inference_ms"] for r in results]),
           "latency_ms": latency, "postprocess_ms": post,
           "rounds_latency_ms": [r["latency_ms"] for r in results] if len(results) > 1 else [],
           "peak_rss_mb": rss_peak, "baseline_rss_mb": first["baseline_rss_mb"],
           "runtime_rss_mb": max(r["peak_rss_mb"] - r["baseline_rss_mb"] for r in results),
           "harness_overhead": ({"timed_loop_s": first["loop_s"],
                                 "postprocess_s": sum(first["postprocess_ms"]) / 1e3,
                                 "timed_model_s": sum(first["latency_ms"]) / 1e3, "bare_loop_s": first["bare_loop_s"],
                                 "null_loop_s": first.get("null_loop_s")}
                                if first.get("bare_loop_s") else None),
           "answers_sample": first.get("answers_sample", []),
           "answers": first.get("answers", []),
           "answer_quality": answer_quality(items, first.get("answers", [])) if items else None,
           "device_state": first.get("device_state"),  # remote devices: governor/temperatures before and after
           "profile": first.get("profile"),  # --profile: the first round's per-operator profile
           "trust": trust, "gemm_peak_gflops": trust.get("gemm_peak_gflops"),
           "gemm_peak_kind": trust.get("peak_kind") or ""}
    if rec["threads"] != first.get("threads_effective"):
        rec["reason"] = f"warning: asked {rec['threads']} threads, runtime reports {first.get('threads_effective')}"
    if (rec["device_state"] or {}).get("warnings"):
        rec["reason"] = "; ".join(filter(None, [rec["reason"], "warning: " + "; ".join(rec["device_state"]["warnings"])]))
    return derive(rec)


# What a device-made record decides; the host keeps identity and provenance (model, machine, versions...).
DEVICE_FIELDS = ("shape", "seq_len", "warmup", "threads_effective", "item_ids", "latency_ms", "tokenize_ms",
                 "postprocess_ms", "load_ms", "first_inference_ms", "n_items", "n_model_calls", "tokens",
                 "peak_rss_mb", "baseline_rss_mb", "runtime_rss_mb", "answers_sample", "notes")


def _device_record(rec: dict[str, Any], result: dict[str, Any], config: dict, task: str) -> dict[str, Any]:
    """Merge a record made on the device (samples, its own tokenization, what it could not measure)."""
    rec = dict(rec)
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


def _exports_needed(runs: list[Run], cfg: BenchConfig, device) -> list[dict]:
    """The bundles `runs` will export (ensure_bundle arguments), once each: fixed and dynamic share one;
    and the GEMM probe programs of runtimes that have their own (Runtime.probe; local device only: a
    board probes with what it has)."""
    wanted = []
    for run in runs:
        rt = get_runtime(run.runtime)
        if not (run.precision in rt.precisions and device.available(run.runtime)[0]):
            continue
        if rt.probe and getattr(device, "name", "local") == "local":
            w = {"probe": "int8" if run.precision == "int8" else "fp32", "runtime": rt.name}
            if w not in wanted:
                wanted.append(w)
        if rt.bundle_target and not run.bundle:
            w = {"model": run.model, "task": run.task, "target": rt.bundle_target, "precision": run.precision,
                 "seq_len": cfg.seq_len, "tokenizer": cfg.tokenizer, "onnx_optimize": cfg.onnx_optimize}
            if w not in wanted:
                wanted.append(w)
    return wanted


def _ensure(run: Run, cfg: BenchConfig, cache: Path, log) -> Path:
    t0 = time.perf_counter()
    path = ensure_bundle(cache, run.model, run.task, get_runtime(run.runtime).bundle_target, run.precision,
                         cfg.seq_len, cfg.tokenizer, cfg.onnx_optimize, log=log)
    if time.perf_counter() - t0 > 1:
        log(f"  exported {path} in {time.perf_counter() - t0:.0f} s")
    return path


def one_line(rec: dict[str, Any]) -> str:
    """A record as one human line for the console (a noisy one says why, at once)."""
    head = f"{rec['runtime']:<10} {rec['precision']:<5} {rec['shape']:<7}"
    if rec["status"] != "ok":
        return f"{head} {rec['status']}: {rec['reason']}"
    s = rec["stats"]["latency_ms"]
    frac = rec.get("fraction_of_peak")
    noisy = summary(rec.get("trust"))
    rss = f"{rec['peak_rss_mb']:6.0f} MB" if rec.get("peak_rss_mb") is not None else "     – MB"  # not every device says
    return (f"{head} p50 {s['p50']:8.2f} ms  p90 {s['p90']:8.2f} ms  total {rec['total_model_s']:7.2f} s  "
            f"rss {rss}  {rec.get('achieved_gflops') or 0:6.1f} GFLOP/s"
            + (f" ({frac:.0%} of {rec.get('gemm_peak_kind') or 'fp32'} peak {rec['gemm_peak_gflops']:.0f})"
               if frac else "")
            + (f"  !! {noisy}" if noisy else ""))

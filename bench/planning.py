"""A bench run planned once, before any work: the given bundles and plain files read and verified,
the runs grouped (by model, or by tokenizer for given files), the exports each group needs."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.bundles import bundle_dir
from bench.config import BenchConfig, run_pairs, validate_config
from bench.console import quiet_output
from bench.model_probe import UnreadableModel
from bench.plain_files import Opened, PlainFile, find_plain_files, peer_labels, plain_file_error, read_plain_file
from bench.workloads import WorkloadData, read_workload
from export.bundle import find_bundles, read_manifest
from export.targets import all_targets
from pocketbert.backends import get_runtime, plain_suffixes
from pocketbert.common import UsageError, clean_leftovers, git_revision, library_versions
from pocketbert.contracts import Record
from pocketbert.machine import physical_cores
from pocketbert.models import load_tokenizer


@dataclass
class Run:
    model: str
    task: str
    runtime: str
    precision: str
    shape: str
    bundle: Path | None = None  # a given bundle (bundles mode), or a plain file's folder; else exported on demand
    manifest: Opened | None = None  # the given bundle's manifest, or a plain file's facts (a peer)


@dataclass
class Group:
    """Runs timed together: one workload, one set of items, one rotation (a model, or given files
    that share a tokenizer)."""

    workload: WorkloadData  # parsed and read once per bench run
    name: str  # the model, or the models of given files joined by " + "
    runs: list[Run]


@dataclass
class BenchPlan:
    """A bench run checked and read once, before any work: the config, where it runs (device,
    machine, threads), what every record shares, and the groups of runs to time."""

    cfg: BenchConfig
    device: Any
    threads: int
    out_dir: Path
    cache: Path  # exported bundles
    log_path: Path  # library output
    provenance: dict[str, Any]  # the Record fields every record of the run shares
    groups: list[Group]
    unreadable: list[Record]  # given model files the runtime cannot open: a failed record each
    log: Callable[[str], None] = print
    hold: Callable[[Path], None] = lambda folder: None  # hold a bundle in use for the run (bench.harness.holding)


def make_plan(cfg: BenchConfig, device, log=print) -> BenchPlan:
    """Everything checked and read once, before any export or timing: the workloads (each spec
    parsed and its file read), the given bundles and files (manifests read and verified), the config,
    the device's machine facts and thread count; then the groups of runs."""
    workloads = [read_workload(w) for w in cfg.workloads]
    unreadable: list[tuple[Path, str, str]] = []  # model files the runtime cannot open: failed records
    given = narrowed(given_bundles(cfg.bundles, cfg, unreadable), cfg)
    validate_config(cfg)
    for prefix in ("pocketbert-worker-",):  # a killed run's temp folders
        clean_leftovers(Path(tempfile.gettempdir()), prefix, log, temp_suffix=True)
    out_dir = Path(cfg.out) / cfg.run_id
    log_path = out_dir / "bench.log"
    machine = device.info()
    threads = _threads(cfg, machine)
    log(f"machine: {machine['cpu_model']}, {machine['physical_cores']} cores, load {machine['load_avg_1m']}; "
        f"threads {threads}" + (f"; {cfg.rounds} rounds" if cfg.rounds > 1 else ""))
    log(f"library output (warnings, C++ logging): {log_path}")
    provenance = {"run_id": cfg.run_id, "threads": threads, "warmup": cfg.warmup, "batch_size": 1,
                  "machine": machine, "versions": library_versions(), "git_revision": git_revision()}
    failed = [Record(**provenance, model=label, runtime=plain_suffixes()[path.suffix].name, precision="unknown",
                     workload=workloads[0].kind.name, shape=cfg.shapes[0], status="failed", reason=reason,
                     bundle=str(path), task=cfg.task or "question-answering") for path, label, reason in unreadable]
    with quiet_output(log_path):  # tokenizer loading chatter
        keys = _tokenizer_groups(cfg, given)
    for _, m in given:
        if not any(w.kind.task in (None, m.task) for w in workloads):
            log(f"{m.source}: a {m.task} model, and no --workload of that task: not timed")
    todo = workloads if given or not cfg.bundles else []  # all given files unreadable: nothing to time
    groups = [Group(w, name, runs) for w in todo for name, runs in plan_runs(cfg, w.kind, given, keys).items()]
    return BenchPlan(cfg, device, threads, out_dir, Path(cfg.bundle_cache or Path(cfg.out) / "bundles"), log_path,
                     provenance, groups, failed, log)


def _threads(cfg: BenchConfig, machine: dict) -> int:
    """The thread count of every run: --threads (at most the device's cores: 999 threads on 2 cores
    make no progress), else the device's default (a phone: its big cores), else its physical cores."""
    cores = machine.get("logical_cores") or machine.get("physical_cores")
    if cfg.threads and isinstance(cores, int) and cfg.threads > cores:
        raise UsageError(f"--threads {cfg.threads} is more than the {cores} cores of {machine.get('device', 'local')}: "
                         f"use --threads {cores} or less")
    return cfg.threads or machine.get("default_threads") or physical_cores()


def given_bundles(paths: list[Path], cfg: BenchConfig | None = None,
                   unreadable: list | None = None) -> list[tuple[Path, Opened]]:
    """Existing bundles and plain model files to run, each verified now (a bundle against its
    manifest's sha256; a plain file read and hashed, see bench.plain_files.read_plain_file): every
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


def narrowed(given: list[tuple[Path, Opened]], cfg: BenchConfig) -> list[tuple[Path, Opened]]:
    """The given bundles and files that --runtime and --precision (when set) select: those flags
    narrow a --bundle run, never dropped; when they select none, a one-line UsageError listing what
    was given."""
    if not given or (cfg.runtimes is None and cfg.precisions is None):
        return given
    keep = [(b, m) for b, m in given if (cfg.runtimes is None or _runtime_for(m) in cfg.runtimes)
            and (cfg.precisions is None or m.precision in cfg.precisions)]
    if not keep:
        asked = " ".join(([f"--runtime {' '.join(cfg.runtimes)}"] if cfg.runtimes else [])
                         + ([f"--precision {' '.join(cfg.precisions)}"] if cfg.precisions else []))
        have = ", ".join(sorted({f"{_runtime_for(m)} {m.precision}" for _, m in given}))
        raise UsageError(f"{asked}: none of the given bundles is one of those (given: {have}): "
                         "drop the flag or name a matching bundle")
    return keep


def tokenizer_source(run_or_manifest, folder: Path | None = None) -> str | None:
    """Where a given bundle's or plain file's tokenizer lives (None: the generated vocab)."""
    m = run_or_manifest.manifest if isinstance(run_or_manifest, Run) else run_or_manifest
    if isinstance(m, PlainFile):
        return m.peer.tokenizer
    return str(folder if folder is not None else run_or_manifest.bundle)


def _tokenizer_groups(cfg: BenchConfig, given: list[tuple[Path, Opened]]) -> list[str]:
    """One key per given bundle/file: entries whose tokenizers give the same tokens share a key, so
    they are fed the same items and timed in one rotation (ours next to a peer's file)."""
    import hashlib
    import json

    if cfg.tokenizer or not given:
        return ["--tokenizer"] * len(given)
    keys, seen = [], {}
    for folder, m in given:
        src = tokenizer_source(m, folder)
        if src not in seen:
            tok = load_tokenizer(src)
            probe = tok("Hello, World! A naïve question?", "Its 42 answers.")
            seen[src] = hashlib.sha256(json.dumps([sorted(tok.get_vocab().items()), sorted(probe.keys()),
                                                   probe["input_ids"]]).encode()).hexdigest()
        keys.append(seen[src])
    return keys


def plan_runs(cfg: BenchConfig, kind, given: list[tuple[Path, Opened]], groups: list[str] | None = None
          ) -> dict[str, list[Run]]:
    """group -> its runs for one workload kind, in a stable order. Given bundles and files are
    grouped by tokenizer (one group: one set of items, one rotation); exports by model."""
    plan: dict[str, list[Run]] = {}
    if given:
        by_group: dict[str, list[Run]] = {}
        for (bundle, m), key in zip(given, groups or [""] * len(given)):
            if kind.task and m.task != kind.task:
                continue  # e.g. a QA bundle has nothing to do on STS-B
            model = m.source.removeprefix("preset:")
            for shape in cfg.shapes:
                by_group.setdefault(key, []).append(
                    Run(model, m.task, _runtime_for(m), m.precision, shape, bundle, m))
        for runs in by_group.values():
            plan[" + ".join(dict.fromkeys(r.model for r in runs))] = runs
        return plan
    task = kind.task or "question-answering"
    for model in cfg.models:
        plan[model] = [Run(model, task, r, p, s) for r, p in run_pairs(cfg) for s in cfg.shapes]
    return plan


def _runtime_for(manifest: Opened) -> str:
    """The runtime that loads a given bundle (its target's `runtime`) or plain file (named as such)."""
    target = all_targets().get(manifest.target)
    return target.runs_on if target else manifest.target


def export_want(run: Run, cfg: BenchConfig) -> dict:
    """The bundle export of `run` (ensure_bundle's arguments): fixed and dynamic share one."""
    return {"model": run.model, "task": run.task, "target": get_runtime(run.runtime).bundle_target,
            "precision": run.precision, "seq_len": cfg.seq_len, "tokenizer": cfg.tokenizer,
            "onnx_optimize": cfg.onnx_optimize}


def exports_needed(runs: list[Run], cfg: BenchConfig, device) -> list[dict]:
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
            w = export_want(run, cfg)
            if w not in wanted:
                wanted.append(w)
    return wanted


def export_folder(cache: Path, want: dict) -> Path | None:
    """The cache folder of an export `want` (exports_needed), None for a GEMM probe program."""
    if "probe" in want:
        return None
    return bundle_dir(cache, want["model"], want["task"], want["target"], want["precision"], want["seq_len"],
                      want.get("onnx_optimize", False))

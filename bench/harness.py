"""`run_bench`: the benchmark pipeline, top to bottom, one typed value per step.

  BenchPlan (make_plan: config checked, each workload spec parsed and its file read, given bundles'
  manifests read and verified, machine facts, thread count; once per run)
  -> per Group (a workload x a model, or given files sharing a tokenizer): Ready (make_ready: the
     workload tokenized while missing bundles export; each bundle's manifest read and verified once)
  -> per run: Prepared (prepare: the record so far and its WorkerSpec, or a final skipped/failed record)
  -> `rounds` times, the runs in a rotated order: WorkerResult from the Device (its own GEMM probes
     and /proc CPU accounting around the timed loop), judged once (bench.trust); a noisy one is
     retried `retries` times
  -> Record (build_record: per-item medians over the rounds, statistics derived once and stored),
     written atomically
  -> report rendered from the records' stored figures (bench.report).
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
import re
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from bench.bundles import (
    bundle_dir,
    export_missing,
    find_plain_files,
    open_bundle,
    peer_labels,
    plain_file_error,
    read_cached,
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
from bench.workloads import Item, Workload, WorkloadData, answer_quality, read_workload, save_items, tokenize_workload
from export.bundle import find_bundles, read_manifest
from export.coverage import delegation_fields
from export.targets import all_targets
from pocketbert.backends import all_precisions, get_runtime, main_job, plain_suffixes, runtime_names
from pocketbert.claims import claim_run_folder
from pocketbert.common import UsageError, append_log, clean_leftovers, git_revision, library_versions, lookup, write_json
from pocketbert.contracts import Record, WorkerResult, WorkerSpec
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


@dataclass
class Ready:
    """A group's inputs, made once: the workload in its tokenizer's tokens (saved where every worker
    reads it), each bundle's manifest (read and verified once) or why it could not be had, and each
    model's facts."""

    workload: Workload
    items_path: Path
    bundles: dict[Path, dict]  # exported bundle folder -> its manifest (given ones: Run.manifest)
    unusable: dict[Path, str]  # bundle folder -> why (export failed, bad bundle): its runs fail
    facts: dict[str, dict[str, Any]]  # model -> parameters, config, model_type, input_names


@dataclass
class Prepared:
    """A planned run made ready to time: its record so far (identity, provenance, the model's and the
    workload's facts) and its worker spec; a run skipped or failed before any timing has no spec and
    its record is final."""

    record: Record
    spec: WorkerSpec | None = None
    item_flops: list[float] = field(default_factory=list)  # per item, on the shapes fed


@dataclass
class Round:
    """One timed visit of a run: its worker result (judged) and where it fell in the rotation."""

    result: WorkerResult
    round: int
    position: int


def run_bench(cfg: BenchConfig, device=None, log=print) -> Path:
    """Run the whole benchmark described by `cfg`; returns the folder of records. The run folder is
    claimed for the run (pocketbert.claims): a second run on the same --run-id is refused naming this
    one's pid, and one that already holds records only with `overwrite`."""
    cfg = dataclasses.replace(cfg, run_id=cfg.run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    out_dir = Path(cfg.out) / cfg.run_id  # created when first written to: a failed start leaves no empty folder
    if Path(cfg.out).resolve() not in out_dir.resolve().parents:
        raise UsageError(f"--run-id {cfg.run_id!r} must be a plain folder name inside --out {cfg.out}")
    with claim_run_folder(out_dir, overwrite=cfg.overwrite):
        plan = make_plan(cfg, device or LocalDevice(), log)
        out = RecordWriter(out_dir, log)
        try:
            for rec in plan.unreadable:
                out.write(rec)
            with tempfile.TemporaryDirectory(prefix=f"pocketbert-bench-{os.getpid()}-") as work:
                for i, group in enumerate(plan.groups):
                    for rec in bench_group(plan, group, Path(work) / f"items-{i}.json"):
                        out.write(rec)
        except KeyboardInterrupt:
            log(f"interrupted: {out.written} record(s) kept in {out_dir}")
            raise
        if cfg.report and out.written:
            with quiet_output(plan.log_path):
                render_report([out_dir], out_dir)
            log(f"report: {out_dir / 'report.md'}")
        return out_dir


def make_plan(cfg: BenchConfig, device, log=print) -> BenchPlan:
    """Everything checked and read once, before any export or timing: the workloads (each spec
    parsed and its file read), the given bundles and files (manifests read and verified), the config,
    the device's machine facts and thread count; then the groups of runs."""
    workloads = [read_workload(w) for w in cfg.workloads]
    unreadable: list[tuple[Path, str, str]] = []  # model files the runtime cannot open: failed records
    given = _given_bundles(cfg.bundles, cfg, unreadable)
    _validate(cfg)
    for prefix in ("pocketbert-worker-", "pocketbert-bench-"):  # a killed run's temp folders
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
        if not any(w.kind.task in (None, m["task"]) for w in workloads):
            log(f"{m['source']}: a {m['task']} model, and no --workload of that task: not timed")
    todo = workloads if given or not cfg.bundles else []  # all given files unreadable: nothing to time
    groups = [Group(w, name, runs) for w in todo for name, runs in _plan(cfg, w.kind, given, keys).items()]
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


class RecordWriter:
    """Records into the run folder, each checked against the Record contract and written atomically
    (the folder is made with the first), one console line each."""

    def __init__(self, out_dir: Path, log=print):
        self.out_dir, self.log, self.written = out_dir, log, 0
        self.bundles: dict[str, str] = {}  # file name -> the bundle of the record written under it this run

    def write(self, record: Record) -> None:
        record.validate("record")  # the typed contract's checks
        rec = record.to_dict()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.out_dir / self._name(rec), rec)
        self.written += 1
        self.log("  " + one_line(rec))

    def _name(self, rec: dict) -> str:
        """record_name, made unique within the run: two bundles of one model, runtime and precision (a
        plain and a guided int8) each keep their record, named after the second one's folder."""
        name, bundle = record_name(rec), str(rec.get("bundle") or "")
        if self.bundles.setdefault(name, bundle) == bundle:
            return name
        folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(bundle).parent.name or "bundle")
        k, stem = 1, name.removesuffix(".json")
        unique = f"{stem}~{folder}.json"
        while self.bundles.setdefault(unique, bundle) != bundle:
            k += 1
            unique = f"{stem}~{folder}-{k}.json"
        return unique


def bench_group(plan: BenchPlan, group: Group, items_path: Path) -> Iterator[Record]:
    """One group's records: its inputs made once (bundles exported and opened while the workload is
    tokenized), every run prepared (skips and failures first: nothing heavy between timings), then
    the prepared runs timed in rotated rounds."""
    ready = make_ready(plan, group, items_path)
    plan.log(f"{group.name} on {ready.workload.name} ({len(ready.workload.items)} items, {group.runs[0].task}, "
             f"seq {plan.cfg.seq_len})")
    prepared = [prepare(run, plan, ready) for run in group.runs]
    yield from (p.record for p in prepared if p.spec is None)
    yield from time_rounds([p for p in prepared if p.spec is not None], plan, ready)


def make_ready(plan: BenchPlan, group: Group, items_path: Path) -> Ready:
    """The group's bundles (given: as read at the start; exported: in parallel while the workload is
    tokenized, then each manifest read and verified once), its items and its models' facts."""
    cfg, runs, loaded = plan.cfg, group.runs, []

    def tokenize():  # ~5 s of tokenizer imports, overlapping the exports
        with quiet_output(plan.log_path):  # tokenizer loading chatter
            tokenizer = _tokenizer_for(runs[0].model, cfg.tokenizer, runs)
            loaded.append(tokenize_workload(group.workload, tokenizer, cfg.seq_len, cfg.limit))

    bundles: dict[Path, dict] = {}  # exported ones (given ones travel with their runs)
    wanted = _exports_needed(runs, cfg, plan.device)
    with quiet_output(plan.log_path):
        bundles.update(_open_cached(plan.cache, wanted))
    export_missing(plan.cache, [w for w in wanted if "probe" in w or _bundle_path(plan.cache, w) not in bundles],
                   jobs=min(physical_cores(), 4), log_path=plan.log_path, log=plan.log,
                   progress=not cfg.quiet, meanwhile=tokenize)
    unusable = {}
    for w in wanted:
        path = _bundle_path(plan.cache, w)
        if path is not None and path not in bundles:  # exported just now, or its export failed
            try:
                with quiet_output(plan.log_path):  # exporter warnings and C++ logging
                    bundles[path] = open_bundle(plan.cache, w, log=plan.log)
            except UsageError as e:
                unusable[path] = f"bundle: {e}"
            except Exception as e:  # noqa: BLE001 - an exporter crash fails this bundle's runs, not the study
                unusable[path] = f"export failed: {_error_line(e)}"
    [workload] = loaded
    save_items(workload.items, items_path)  # what every worker reads
    with quiet_output(plan.log_path):  # model loading chatter
        facts = {m: _model_facts(m, runs[0].task, [r for r in runs if r.model == m], plan, bundles)
                 for m in dict.fromkeys(r.model for r in runs)}  # per model: peers have their own
    return Ready(workload, items_path, bundles, unusable, facts)


def _bundle_path(cache: Path, want: dict) -> Path | None:
    """The cache folder of an export `want` (_exports_needed), None for a GEMM probe program."""
    if "probe" in want:
        return None
    return bundle_dir(cache, want["model"], want["task"], want["target"], want["precision"], want["seq_len"],
                      want.get("onnx_optimize", False))


def _open_cached(cache: Path, wanted: list[dict]) -> dict[Path, dict]:
    """The wanted bundles already cached and current, each manifest read and verified once; a bad
    one is left to open_bundle (after the exports), which fails its runs with the reason."""
    opened = {}
    for w in wanted:
        path = _bundle_path(cache, w)
        if path is not None:
            try:
                manifest = read_cached(path, w)
            except UsageError:
                continue
            if manifest is not None:
                opened[path] = manifest
    return opened


def time_rounds(planned: list[Prepared], plan: BenchPlan, ready: Ready) -> Iterator[Record]:
    """Every prepared run timed `rounds` times in rotated order; a run's record comes after its last
    round, or at once when it failed or its device recorded it itself (nothing to add later)."""
    rounds: list[list[Round]] = [[] for _ in planned]
    done: set[int] = set()
    for r in range(plan.cfg.rounds):
        order = rotated(len(planned), r, plan.cfg.rounds)
        for position, i in enumerate(order, 1):
            if i in done:
                continue
            result = measure(planned[i], plan)
            if result.error:
                done.add(i)
                yield dataclasses.replace(planned[i].record, status="failed", reason=result.error)
            elif result.record is not None:  # the device recorded the run itself (phone app, minibench)
                done.add(i)
                yield device_record(planned[i], result, ready.facts[planned[i].record.model]["config"])
            else:
                rounds[i].append(Round(result, r + 1, position))
                if r == plan.cfg.rounds - 1:
                    yield build_record(planned[i], rounds[i], ready.workload.items)


def _error_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"


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


def _model_facts(model: str, task: str, runs: list[Run], plan: BenchPlan | None = None,
                 bundles: dict[Path, dict] | None = None) -> dict[str, Any]:
    """Parameter counts and config of the model: from a given bundle's manifest, else from a bundle
    the bench exported for it (as opened for the run: building a preset model in this process costs
    ~6 s of imports), else from the model itself."""
    def from_manifest(m: dict, folder: Path) -> dict[str, Any]:
        return {"parameters": m["parameters"], "config": m["config"] if "vocab_size" in m["config"]
                else _config_from_folder(folder), "model_type": m["model_type"],
                "input_names": [i["name"] for i in m["inputs"]]}

    given = next((r for r in runs if r.bundle), None)
    if given:
        return from_manifest(given.manifest, given.bundle)
    for r in runs:
        if plan is None or not get_runtime(r.runtime).bundle_target:  # it runs the model itself: no bundle
            continue
        folder = _bundle_path(plan.cache, _export_want(r, plan.cfg))
        if folder in (bundles or {}):
            return from_manifest(bundles[folder], folder)
    loaded = load_model(model, task)
    return {"parameters": count_parameters(loaded.model), "config": loaded.model.config.to_dict(),
            "model_type": loaded.model_type, "input_names": loaded.input_names}


def _config_from_folder(bundle: Path) -> dict:
    import json

    p = Path(bundle) / "config.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def prepare(run: Run, plan: BenchPlan, ready: Ready) -> Prepared:
    """A run's record so far and its worker spec, or its final record when it is skipped (with the
    reason) or failed before any timing (its bundle could not be had)."""
    record = _record_header(run, plan, ready)
    why = _skip_reason(run, plan.device)
    if why:
        return Prepared(dataclasses.replace(record, status="skipped", reason=why))
    spec = WorkerSpec(kind="run", runtime=run.runtime, precision=run.precision, model=run.model, task=run.task,
                      items_path=str(ready.items_path), shape=run.shape, seq_len=plan.cfg.seq_len,
                      threads=plan.threads, warmup=plan.cfg.warmup, overhead_check=plan.cfg.overhead_check,
                      quiet=plan.cfg.quiet, label=f"{run.model} {run.runtime}-{run.precision} {run.shape}",
                      input_names=ready.facts[run.model]["input_names"], remeasure=plan.cfg.pace_retries,
                      profile=plan.cfg.profile)
    if get_runtime(run.runtime).bundle_target:
        try:
            with quiet_output(plan.log_path):
                record, spec = _with_bundle(record, spec, run, plan, ready)
        except SkipRun as e:
            return Prepared(dataclasses.replace(record, status=e.status, reason=str(e)))
    record, item_flops = _with_workload_facts(record, run, ready)
    return Prepared(record, spec, item_flops)


class SkipRun(Exception):
    """A run that cannot be timed as asked (the reason): skipped, or failed before any timing."""

    def __init__(self, why: str, status: str = "skipped"):
        super().__init__(why)
        self.status = status


def _record_header(run: Run, plan: BenchPlan, ready: Ready) -> Record:
    """What every record of the run knows before it is timed: identity, provenance, the model's facts."""
    facts = ready.facts[run.model]
    return Record(**plan.provenance, status="ok", reason="", model=run.model, model_type=facts["model_type"],
                  task=run.task, runtime=run.runtime, precision=run.precision, workload=ready.workload.name,
                  workload_source=ready.workload.source, shape=run.shape, seq_len=plan.cfg.seq_len,
                  parameters=facts["parameters"], rounds=plan.cfg.rounds,
                  created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _skip_reason(run: Run, device) -> str:
    """Why this device or runtime cannot run `run` at all ('' when it can)."""
    rt = get_runtime(run.runtime)
    ok, why = device.available(run.runtime)
    if not ok:
        return f"{run.runtime} {why}"
    peer = (run.manifest or {}).get("peer")  # a plain file: the backend runs it whatever its precision
    if run.precision not in rt.precisions and not peer:
        return f"{run.runtime} has no {run.precision} (supports {', '.join(rt.precisions)})"
    if run.shape == "dynamic" and not rt.dynamic_shapes:
        return f"{run.runtime} runs fixed shapes only"
    return ""


def _with_bundle(record: Record, spec: WorkerSpec, run: Run, plan: BenchPlan,
                 ready: Ready) -> tuple[Record, WorkerSpec]:
    """The record and spec of a run that times a bundle or plain file (its manifest as opened once
    for the run): the file to load, its length, its GEMM probe, its inputs; SkipRun when it cannot."""
    if run.bundle:  # given: read and verified at the start (plain files of one folder share it)
        folder, manifest = run.bundle, run.manifest
    else:
        folder = _bundle_path(plan.cache, _export_want(run, plan.cfg))
        if folder in ready.unusable:
            raise SkipRun(ready.unusable[folder], "failed")
        manifest = ready.bundles[folder]
    peer = manifest.get("peer")
    if peer:
        try:
            verify_plain_file(manifest)  # still the file read at the start
        except UsageError as e:
            raise SkipRun(f"bundle: {e}", "failed") from None
    if run.shape == "dynamic" and not manifest.get("dynamic_seq"):
        raise SkipRun(f"{peer['label']} takes a fixed input shape {manifest['inputs'][0]['shape']}: it runs "
                      "padded (fixed) only" if peer else "bundle has fixed sequence lengths only")
    seq_len = int(manifest["seq_len"])
    model_file = manifest["files"][manifest["model_file"]]
    probe = probe_program_path(plan.cache, run.runtime, run.precision)
    spec = dataclasses.replace(
        spec, model_path=str(folder / manifest["model_file"]), seq_len=seq_len,
        input_names=[i["name"] for i in manifest["inputs"]],
        # the runtime's own GEMM probe (Runtime.probe), made by the export step
        probe_program=(str(probe) if probe.is_file() else "") if probe is not None else spec.probe_program)
    record = dataclasses.replace(record, seq_len=seq_len, bundle=str(folder), model_file_bytes=model_file["bytes"],
                                 **delegation_fields(manifest))  # the manifest's coverage: the "delegated" column
    if peer:
        why = _peer_problem(manifest, run, ready.workload)
        if why:
            raise SkipRun(why)
        record = dataclasses.replace(record, bundle=peer["file"], notes={"peer": {
            **peer, "sha256": model_file["sha256"], "inputs": manifest["inputs"], "outputs": manifest["outputs"]}})
        spec = dataclasses.replace(spec, items_path=str(_items_as(manifest, ready.workload, ready.items_path)))
    return record, spec


def _with_workload_facts(record: Record, run: Run, ready: Ready) -> tuple[Record, list[float]]:
    """The record with the workload's facts on this run's shapes (items, calls, tokens, FLOPs), and
    each item's FLOPs."""
    items = ready.workload.items
    lengths = [[len(f["input_ids"]) for f in item.features] for item in items]
    fed = [[record.seq_len if run.shape == "fixed" else n for n in item] for item in lengths]
    try:
        item_flops = [sum(forward_flops(ready.facts[run.model]["config"], n, run.task) for n in item) for item in fed]
    except ValueError:  # a plain file with no config.json beside it: sizes unknown, so no FLOPs
        item_flops = [0] * len(fed)
    flops = sum(item_flops) or None
    return dataclasses.replace(
        record, n_items=len(items), n_model_calls=sum(len(x) for x in lengths), item_ids=[item.id for item in items],
        tokenize_ms=[item.tokenize_ms for item in items],
        tokens={"real": sum(map(sum, lengths)), "fed": sum(map(sum, fed))},
        flops_total=flops, flops_per_item_mean=flops / len(items) if flops else None), item_flops


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


def measure(prepared: Prepared, plan: BenchPlan) -> WorkerResult:
    """One worker run, judged once (bench.trust); a noisy one is run again up to `cfg.retries` times.
    When only the pace moved, the worker itself re-timed its loop up to `cfg.pace_retries` times
    (WorkerSpec.remeasure: no re-import, no reload); a fresh worker makes up any it could not (the
    last is kept)."""
    cfg, spec, rec = plan.cfg, prepared.spec, prepared.record
    cores = rec.machine.get("logical_cores") or rec.machine.get("physical_cores")
    attempt, allowed = 0, cfg.retries
    while True:
        result = WorkerResult.of(plan.device.run_worker(spec, timeout_s=cfg.timeout_s), f"{spec.label}: worker result")
        append_log(plan.log_path, f"{spec.label} (round worker, attempt {attempt + 1})", result.log)
        if result.error or result.record is not None:
            return result
        trust = result.trust
        model_s = sum(result.latency_ms) / 1e3
        peak = trust.get("gemm_peak_gflops")
        flops = rec.flops_total
        trust["fraction_of_peak"] = flops / model_s / 1e9 / peak if peak and model_s and flops else None
        trust["attempt"] = attempt + 1
        judge(trust, cores, plan.threads)
        for earlier in trust.get("remeasured") or []:
            plan.log(f"  {spec.label}: noisy ({'; '.join(earlier['reasons'])}); re-timed in the same worker")
        if trust["noisy"] and not trust["shared"]:
            allowed = max(cfg.retries, attempt + cfg.pace_retries - len(trust.get("remeasured") or []))
        if not trust["noisy"] or attempt >= allowed:
            return result
        attempt += 1
        plan.log(f"  {spec.label}: noisy ({'; '.join(trust['reasons'])}); retry {attempt}/{allowed}")


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def build_record(prepared: Prepared, rounds: list[Round], items: list | None = None) -> Record:
    """The record of a run from its rounds' worker results, built once: per item, the median over the
    rounds (each round's raw samples kept); trust from every round (one round: its own verdict; more:
    the merge, judged once); statistics derived once and stored (bench.records.derive)."""
    results = [r.result for r in rounds]
    first = results[0]
    latency = [_median(col) for col in zip(*(r.latency_ms for r in results))]
    trust = _merged_trust(rounds)
    trust["cv"] = robust_cv([lat / f for lat, f in zip(latency, prepared.item_flops) if f])  # latency per FLOP
    imports = [r.import_ms for r in results if r.import_ms is not None]  # boards' older workers: none
    rec = {**prepared.record.to_dict(), "threads_effective": first.threads_effective,
           "model_file_bytes": prepared.record.model_file_bytes or first.model_bytes,
           "import_ms": _median(imports) if imports else None,
           "load_ms": _median([r.load_ms for r in results]),
           "first_inference_ms": _median([r.first_inference_ms for r in results]),
           "latency_ms": latency, "postprocess_ms": [_median(col) for col in zip(*(r.postprocess_ms for r in results))],
           "rounds_latency_ms": [r.latency_ms for r in results] if len(results) > 1 else [],
           "peak_rss_mb": max(r.peak_rss_mb for r in results), "baseline_rss_mb": first.baseline_rss_mb,
           "runtime_rss_mb": max(r.peak_rss_mb - r.baseline_rss_mb for r in results),
           "harness_overhead": ({"timed_loop_s": first.loop_s, "postprocess_s": sum(first.postprocess_ms) / 1e3,
                                 "timed_model_s": sum(first.latency_ms) / 1e3, "bare_loop_s": first.bare_loop_s,
                                 "null_loop_s": first.null_loop_s} if first.bare_loop_s else None),
           "answers_sample": first.answers_sample, "answers": first.answers,
           "answer_quality": answer_quality(items, first.answers) if items else None,
           "device_state": first.device_state,  # remote devices: governor/temperatures before and after
           "profile": first.profile,  # --profile: the first round's per-operator profile
           "trust": trust, "gemm_peak_gflops": trust.get("gemm_peak_gflops"),
           "gemm_peak_kind": trust.get("peak_kind") or ""}
    warnings = []
    if rec["threads"] != first.threads_effective:
        warnings.append(f"warning: asked {rec['threads']} threads, runtime reports {first.threads_effective}")
    if (first.device_state or {}).get("warnings"):
        warnings.append("warning: " + "; ".join(first.device_state["warnings"]))
    rec["reason"] = "; ".join(warnings)
    return Record.from_dict(derive(rec), "record")


def _merged_trust(rounds: list[Round]) -> dict[str, Any]:
    """The trust evidence of a record: its one round's (verdict included), or every round's under
    "rounds" with their spread and the worst of each measure (judged once, by derive)."""
    trusts = [r.result.trust for r in rounds]
    if len(rounds) == 1:
        return dict(trusts[0])
    totals = [sum(r.result.latency_ms) for r in rounds]
    peaks = [t["gemm_peak_gflops"] for t in trusts if t.get("gemm_peak_gflops")]
    return {"rounds": [{**t, "round": r.round, "position": r.position} for t, r in zip(trusts, rounds)],
            "rounds_spread": (max(totals) - min(totals)) / _median(totals) if _median(totals) else None,
            "load_before": trusts[0].get("load_before"), "load_after": trusts[-1].get("load_after"),
            "other_cpu_cores_max": max((t.get("other_cpu_cores") or 0 for t in trusts), default=None),
            "steal_pct_max": max((t.get("steal_pct") or 0 for t in trusts), default=None),
            "gemm_peak_gflops": max(peaks) if peaks else None, "peak_kind": trusts[0].get("peak_kind"),
            "gemm_library": trusts[0].get("gemm_library")}


# What a device-made record decides; the host keeps identity and provenance (model, machine, versions...).
DEVICE_FIELDS = ("shape", "seq_len", "warmup", "threads_effective", "item_ids", "latency_ms", "tokenize_ms",
                 "postprocess_ms", "load_ms", "first_inference_ms", "n_items", "n_model_calls", "tokens",
                 "peak_rss_mb", "baseline_rss_mb", "runtime_rss_mb", "answers_sample", "notes")


def device_record(prepared: Prepared, result: WorkerResult, config: dict) -> Record:
    """Merge a record made on the device (samples, its own tokenization, what it could not measure)
    into the host's; statistics derived once."""
    rec = prepared.record.to_dict()
    dev = result.record
    rec.update({k: dev[k] for k in DEVICE_FIELDS if k in dev})
    if dev.get("workload") not in (None, "host-items"):  # e.g. minibench's all-ones inputs, not the host's items
        rec["workload"], rec["workload_source"] = dev["workload"], dev.get("workload_source", "")
    rec["versions"] = {**rec["versions"], **dev.get("versions", {})}
    state = result.device_state or {}
    rec["notes"] = {**rec.get("notes", {}), "device_state": state} if state else rec.get("notes", {})
    rec["reason"] = "; ".join(x for x in (dev.get("reason"), *state.get("warnings", [])) if x)
    calls, fed = rec.get("n_model_calls") or 0, (rec.get("tokens") or {}).get("fed") or 0
    if calls and fed:  # from the mean window length: the device reports totals, not every window
        rec["flops_total"] = forward_flops(config, round(fed / calls), rec["task"]) * calls
        rec["flops_per_item_mean"] = rec["flops_total"] / max(rec.get("n_items") or 1, 1)
    return Record.from_dict(derive(rec), "device record")


def _export_want(run: Run, cfg: BenchConfig) -> dict:
    """The bundle export of `run` (ensure_bundle's arguments): fixed and dynamic share one."""
    return {"model": run.model, "task": run.task, "target": get_runtime(run.runtime).bundle_target,
            "precision": run.precision, "seq_len": cfg.seq_len, "tokenizer": cfg.tokenizer,
            "onnx_optimize": cfg.onnx_optimize}


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
            w = _export_want(run, cfg)
            if w not in wanted:
                wanted.append(w)
    return wanted


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

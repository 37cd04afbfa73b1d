"""`run_bench`: the benchmark pipeline, top to bottom, one typed value per step (this module orchestrates;
each step lives in its own module).

  BenchPlan (bench.planning.make_plan: config checked (bench.config), each workload spec parsed and its
  file read, given bundles' manifests read and verified, machine facts, thread count; once per run)
  -> per Group (a workload x a model, or given files sharing a tokenizer): Ready (make_ready: the
     workload tokenized while missing bundles export; each bundle's Manifest read and verified once)
  -> per run: Prepared (bench.prepare.prepare: the record so far and its WorkerSpec, items included,
     or a final skipped/failed record)
  -> `rounds` times, the runs in a rotated order: WorkerResult from the Device (its own GEMM probes
     and /proc CPU accounting around the timed loop), judged once (bench.trust); a noisy one is
     retried `retries` times
  -> Record (bench.record_build: per-item medians over the rounds, statistics derived once and stored),
     written atomically (RecordWriter; its console line: bench.console)
  -> report rendered from the records' stored figures (bench.report).
With --bundle, given bundles and plain model files (.onnx / .pte, optimum-cli folders: see
bench.plain_files.read_plain_file) are grouped by tokenizer, so ours and a peer's file share items and rounds.
Library output of the parent (exports, model loading) and of every worker goes to
<run>/bench.log; the console gets the tool's own lines and the workers' progress bars.
Ctrl-C stops the running worker; every record already written stays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from bench.bundles import export_missing, open_bundle, read_cached
from bench.config import BenchConfig
from bench.console import error_line, quiet_output
from bench.devices.local import LocalDevice
from bench.planning import BenchPlan, Group, export_folder, exports_needed, make_plan
from bench.prepare import Prepared, Ready, model_facts, prepare, tokenizer_for
from bench.record_build import Round, build_record, device_record
from bench.records import record_line, record_name
from bench.report import render_report
from bench.trust import judge
from bench.workloads import tokenize_workload
from pocketbert.claims import claim_run_folder, in_use
from pocketbert.common import UsageError, append_log, sha256_path, write_text_atomic
from pocketbert.contracts import Manifest, Record, WorkerResult
from pocketbert.machine import physical_cores


def run_bench(cfg: BenchConfig, device=None, log=print, outcome: list[tuple[str, str]] | None = None) -> Path:
    """Run the whole benchmark described by `cfg`; returns the folder of records. The run folder is
    claimed for the run (pocketbert.claims): a second run on the same --run-id is refused naming this
    one's pid, and one that already holds records only with `overwrite`. `outcome` collects the status
    of every record this call writes (what its exit code speaks for)."""
    cfg = dataclasses.replace(cfg, run_id=cfg.run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    out_dir = Path(cfg.out) / cfg.run_id  # created when first written to: a failed start leaves no empty folder
    if Path(cfg.out).resolve() not in out_dir.resolve().parents:
        raise UsageError(f"--run-id {cfg.run_id!r} must be a plain folder name inside --out {cfg.out}")
    with claim_run_folder(out_dir, overwrite=cfg.overwrite):
        existed = out_dir.exists()
        out = RecordWriter(out_dir, log, outcome)
        try:
            plan = make_plan(cfg, device or LocalDevice(), log)
            with holding(plan):  # an export that would replace one of these bundles is refused, naming this run
                for rec in plan.unreadable:
                    out.write(rec)
                for group in plan.groups:
                    for rec in bench_group(plan, group):
                        out.write(rec)
        except BaseException as e:
            if not out.written and not existed:  # a failed or interrupted start: the run id stays free
                shutil.rmtree(out_dir, ignore_errors=True)
            elif isinstance(e, KeyboardInterrupt):
                log(f"interrupted: {out.written} record(s) kept in {out_dir}")
            raise
        if cfg.report and out.written:
            with quiet_output(plan.log_path):
                render_report([out_dir], out_dir)
            log(f"report: {out_dir / 'report.md'}")
        return out_dir


@contextlib.contextmanager
def holding(plan: BenchPlan) -> Iterator[None]:
    """The given bundles held in use for the whole run (pocketbert.claims.in_use); exported ones are
    held from when they are opened (make_ready)."""
    with contextlib.ExitStack() as stack:
        plan.hold = lambda folder: stack.enter_context(in_use(folder, f"bench run {plan.cfg.run_id}"))
        for folder in dict.fromkeys(r.bundle for g in plan.groups for r in g.runs if r.bundle is not None):
            plan.hold(folder)
        yield


class RecordWriter:
    """Records into the run folder, each checked against the Record contract and written atomically
    (the folder is made with the first), one console line each."""

    def __init__(self, out_dir: Path, log=print, outcome: list[tuple[str, str]] | None = None):
        self.out_dir, self.log, self.written = out_dir, log, 0
        self.outcome = outcome if outcome is not None else []  # (status, reason) of each record written
        self.bundles: dict[str, str] = {}  # file name -> the bundle of the record written under it this run

    def write(self, record: Record) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.out_dir / self._name(record), record.to_json())
        self.written += 1
        self.outcome.append((record.status, record.reason))
        self.log("  " + record_line(record))

    def _name(self, record: Record) -> str:
        """record_name, made unique within the run: two bundles of one model, runtime and precision (a
        plain and a guided int8) each keep their record, named after the second one's folder."""
        name, bundle = record_name(record), str(record.bundle or "")
        if self.bundles.setdefault(name, bundle) == bundle:
            return name
        folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(bundle).parent.name or "bundle")
        k, stem = 1, name.removesuffix(".json")
        unique = f"{stem}~{folder}.json"
        while self.bundles.setdefault(unique, bundle) != bundle:
            k += 1
            unique = f"{stem}~{folder}-{k}.json"
        return unique


def bench_group(plan: BenchPlan, group: Group) -> Iterator[Record]:
    """One group's records: its inputs made once (bundles exported and opened while the workload is
    tokenized), every run prepared (skips and failures first: nothing heavy between timings), then
    the prepared runs timed in rotated rounds."""
    ready = make_ready(plan, group)
    plan.log(f"{group.name} on {ready.workload.name} ({len(ready.workload.items)} items, {group.runs[0].task}, "
             f"seq {plan.cfg.seq_len})")
    prepared = [prepare(run, plan, ready) for run in group.runs]
    yield from (p.record for p in prepared if p.spec is None)
    yield from time_rounds([p for p in prepared if p.spec is not None], plan, ready)


def make_ready(plan: BenchPlan, group: Group) -> Ready:
    """The group's bundles (given: as read at the start; exported: in parallel while the workload is
    tokenized, then each manifest read and verified once), its items and its models' facts."""
    cfg, runs, loaded = plan.cfg, group.runs, []

    def tokenize():  # ~5 s of tokenizer imports, overlapping the exports
        with quiet_output(plan.log_path):  # tokenizer loading chatter
            tokenizer = tokenizer_for(runs[0].model, cfg.tokenizer, runs)
            loaded.append(tokenize_workload(group.workload, tokenizer, cfg.seq_len, cfg.limit))

    bundles: dict[Path, Manifest] = {}  # exported ones (given ones travel with their runs)
    wanted = exports_needed(runs, cfg, plan.device)
    with quiet_output(plan.log_path):
        bundles.update(_open_cached(plan.cache, wanted, plan.hold))
    export_missing(plan.cache, [w for w in wanted if "probe" in w or export_folder(plan.cache, w) not in bundles],
                   jobs=min(physical_cores(), 4), log_path=plan.log_path, log=plan.log,
                   progress=not cfg.quiet, meanwhile=tokenize)
    unusable = {}
    for w in wanted:
        path = export_folder(plan.cache, w)
        if path is not None and path not in bundles:  # exported just now, or its export failed
            try:
                with quiet_output(plan.log_path):  # exporter warnings and C++ logging
                    bundles[path] = open_bundle(plan.cache, w, log=plan.log)
                plan.hold(path)
            except UsageError as e:
                unusable[path] = f"bundle: {e}"
            except Exception as e:  # noqa: BLE001 - an exporter crash fails this bundle's runs, not the study
                unusable[path] = f"export failed: {error_line(e)}"
    [workload] = loaded
    with quiet_output(plan.log_path):  # model loading chatter
        facts = {m: model_facts(m, runs[0].task, [r for r in runs if r.model == m], plan, bundles)
                 for m in dict.fromkeys(r.model for r in runs)}  # per model: peers have their own
    return Ready(workload, bundles, unusable, facts)


def _open_cached(cache: Path, wanted: list[dict], hold=lambda folder: None) -> dict[Path, Manifest]:
    """The wanted bundles already cached and current, each manifest read and verified once; a bad
    one is left to open_bundle (after the exports), which fails its runs with the reason."""
    opened = {}
    for w in wanted:
        path = export_folder(cache, w)
        if path is not None:
            try:
                manifest = read_cached(path, w)
            except UsageError:
                continue
            if manifest is not None:
                opened[path] = manifest
                hold(path)
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
                yield planned[i].record.replace(status="failed", reason=result.error)
            elif result.record is not None:  # the device recorded the run itself (phone app, minibench)
                done.add(i)
                yield device_record(planned[i], result, ready.facts[planned[i].record.model].config)
            else:
                rounds[i].append(Round(result, r + 1, position))
                if r == plan.cfg.rounds - 1:
                    changed = file_changed(planned[i])
                    yield (planned[i].record.replace(status="failed", reason=changed) if changed
                           else build_record(planned[i], rounds[i], ready.workload.items))


def file_changed(prepared: Prepared) -> str:
    """Why the timed file is not the one opened for the run (its sha256 changed while it was timed), or ''."""
    want, path = prepared.record.model_file_sha256, Path(prepared.spec.model_path or "")
    if not want or not prepared.spec.model_path:
        return ""
    try:
        now = sha256_path(path)
    except OSError as e:
        return f"{path} could not be read again after timing ({e.strerror or e}): its rounds are discarded"
    if now != want:
        return (f"{path} changed while it was timed (sha256 {want[:12]} when opened, {now[:12]} after the last "
                "round): its rounds are discarded")
    return ""


def rotated(n: int, r: int, rounds: int) -> list[int]:
    """The run indices in round r's order: each round starts a fraction `r / rounds` further along
    (one run further when there are fewer runs than rounds), so over the rounds every runtime is
    visited early, late and in between (drift hits all alike)."""
    if not n:
        return []
    k = r % n if n <= rounds else (r * n) // rounds
    return list(range(k, n)) + list(range(k))


def measure(prepared: Prepared, plan: BenchPlan) -> WorkerResult:
    """One worker run, judged once (bench.trust); a noisy one is run again up to `cfg.retries` times.
    When only the pace moved, the worker itself re-timed its loop up to `cfg.pace_retries` times
    (WorkerSpec.remeasure: no re-import, no reload); a fresh worker makes up any it could not (the
    last is kept)."""
    cfg, spec, rec = plan.cfg, prepared.spec, prepared.record
    cores = rec.machine.cores
    attempt, allowed = 0, cfg.retries
    while True:
        result = plan.device.run_worker(spec, timeout_s=cfg.timeout_s)
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

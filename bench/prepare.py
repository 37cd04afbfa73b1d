"""A group's inputs made once (`Ready`) and each run made ready to time (`Prepared`): its record so
far and its worker spec, or its final skipped/failed record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.console import quiet_output
from bench.flops import forward_flops
from bench.machine import probe_program_path
from bench.plain_files import Opened, PlainFile, verify_plain_file
from bench.planning import BenchPlan, Run, export_folder, export_want, tokenizer_source
from bench.workloads import Item, Workload
from export.coverage import delegation_fields
from export.int8_choice import chosen_elsewhere
from pocketbert.backends import get_runtime
from pocketbert.common import UsageError
from pocketbert.contracts import Manifest, Record, WorkerSpec
from pocketbert.models import PRESETS, count_parameters, load_model, load_tokenizer, preset_tokenizer


@dataclass(frozen=True)
class ModelFacts:
    """What a record and its spec need of the model: from its bundle's manifest, or the model itself."""

    parameters: dict[str, int]  # total, non_embedding
    config: dict[str, Any]  # the model's config.json ({}: a plain file without one): its FLOPs
    model_type: str
    input_names: list[str]


@dataclass
class Ready:
    """A group's inputs, made once: the workload in its tokenizer's tokens (every worker spec carries
    its items), each bundle's manifest (read and verified once) or why it could not be had, and each
    model's facts."""

    workload: Workload
    bundles: dict[Path, Manifest]  # exported bundle folder -> its manifest (given ones: Run.manifest)
    unusable: dict[Path, str]  # bundle folder -> why (export failed, bad bundle): its runs fail
    facts: dict[str, ModelFacts]  # model -> its facts


@dataclass
class Prepared:
    """A planned run made ready to time: its record so far (identity, provenance, the model's and the
    workload's facts) and its worker spec; a run skipped or failed before any timing has no spec and
    its record is final."""

    record: Record
    spec: WorkerSpec | None = None
    item_flops: list[float] = field(default_factory=list)  # per item, on the shapes fed


class SkipRun(Exception):
    """A run that cannot be timed as asked (the reason): skipped, or failed before any timing."""

    def __init__(self, why: str, status: str = "skipped"):
        super().__init__(why)
        self.status = status


def prepare(run: Run, plan: BenchPlan, ready: Ready) -> Prepared:
    """A run's record so far and its worker spec, or its final record when it is skipped (with the
    reason) or failed before any timing (its bundle could not be had)."""
    record = _record_header(run, plan, ready)
    why = _skip_reason(run, plan.device)
    if why:
        return Prepared(record.replace(status="skipped", reason=why))
    spec = WorkerSpec(kind="run", runtime=run.runtime, precision=run.precision, model=run.model, task=run.task,
                      items=ready.workload.items, shape=run.shape, seq_len=plan.cfg.seq_len,
                      threads=plan.threads, warmup=plan.cfg.warmup, overhead_check=plan.cfg.overhead_check,
                      quiet=plan.cfg.quiet, label=f"{run.model} {run.runtime}-{run.precision} {run.shape}",
                      input_names=ready.facts[run.model].input_names, remeasure=plan.cfg.pace_retries,
                      profile=plan.cfg.profile)
    if get_runtime(run.runtime).bundle_target:
        try:
            with quiet_output(plan.log_path):
                record, spec = _with_bundle(record, spec, run, plan, ready)
        except SkipRun as e:
            return Prepared(record.replace(status=e.status, reason=str(e)))
    record, item_flops = _with_workload_facts(record, run, ready)
    return Prepared(record, spec, item_flops)


def _record_header(run: Run, plan: BenchPlan, ready: Ready) -> Record:
    """What every record of the run knows before it is timed: identity, provenance, the model's facts."""
    facts = ready.facts[run.model]
    return Record(**plan.provenance, status="ok", reason="", model=run.model, model_type=facts.model_type,
                  task=run.task, runtime=run.runtime, precision=run.precision, workload=ready.workload.name,
                  workload_source=ready.workload.source, shape=run.shape, seq_len=plan.cfg.seq_len,
                  parameters=facts.parameters, rounds=plan.cfg.rounds,
                  created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _skip_reason(run: Run, device) -> str:
    """Why this device or runtime cannot run `run` at all ('' when it can)."""
    rt = get_runtime(run.runtime)
    ok, why = device.available(run.runtime)
    if not ok:
        return f"{run.runtime} {why}"
    peer = isinstance(run.manifest, PlainFile)  # a plain file: the backend runs it whatever its precision
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
        folder = export_folder(plan.cache, export_want(run, plan.cfg))
        if folder in ready.unusable:
            raise SkipRun(ready.unusable[folder], "failed")
        manifest = ready.bundles[folder]
    peer = manifest if isinstance(manifest, PlainFile) else None
    if peer:
        try:
            verify_plain_file(peer)  # still the file read at the start
        except UsageError as e:
            raise SkipRun(f"bundle: {e}", "failed") from None
    if run.shape == "dynamic" and not manifest.dynamic_seq:
        raise SkipRun(f"{peer.peer.label} takes a fixed input shape {peer.inputs[0].shape}: it runs "
                      "padded (fixed) only" if peer else "bundle has fixed sequence lengths only")
    model_file = manifest.files[manifest.model_file]
    probe = probe_program_path(plan.cache, run.runtime, run.precision)
    spec = spec.replace(model_path=str(folder / manifest.model_file), seq_len=manifest.seq_len,
        input_names=manifest.input_names,
        # the runtime's own GEMM probe (Runtime.probe), made by the export step
        probe_program=(str(probe) if probe.is_file() else "") if probe is not None else spec.probe_program)
    record = record.replace(seq_len=manifest.seq_len, bundle=str(folder), model_file_bytes=model_file.bytes,
                            model_file_sha256=model_file.sha256,
                            **delegation_fields(manifest.delegation))  # the manifest's coverage: the "delegated" column
    other_cpu = chosen_elsewhere(manifest.notes, record.machine.to_dict())
    if other_cpu:  # its int8 mode was timed on another CPU: the report says so
        record = record.replace(notes={**(record.notes or {}), "int8_chosen_elsewhere": other_cpu})
    if peer:
        why = _peer_problem(peer, run, ready.workload)
        if why:
            raise SkipRun(why)
        record = record.replace(bundle=peer.peer.file, notes={"peer": {
            **peer.peer.to_dict(), "sha256": model_file.sha256, "inputs": [i.to_dict() for i in peer.inputs],
            "outputs": [{"name": o.name, "shape": o.shape} for o in peer.outputs]}})
        spec = spec.replace(items=_items_as(peer, ready.workload))
    return record, spec


def _with_workload_facts(record: Record, run: Run, ready: Ready) -> tuple[Record, list[float]]:
    """The record with the workload's facts on this run's shapes (items, calls, tokens, FLOPs), and
    each item's FLOPs."""
    items = ready.workload.items
    lengths = [[len(f["input_ids"]) for f in item.features] for item in items]
    fed = [[record.seq_len if run.shape == "fixed" else n for n in item] for item in lengths]
    try:
        item_flops = [sum(forward_flops(ready.facts[run.model].config, n, run.task) for n in item) for item in fed]
    except ValueError:  # a plain file with no config.json beside it: sizes unknown, so no FLOPs
        item_flops = [0] * len(fed)
    flops = sum(item_flops) or None
    return record.replace(n_items=len(items), n_model_calls=sum(len(x) for x in lengths), item_ids=[item.id for item in items],
        tokenize_ms=[item.tokenize_ms for item in items],
        tokens={"real": sum(map(sum, lengths)), "fed": sum(map(sum, fed))},
        flops_total=flops, flops_per_item_mean=flops / len(items) if flops else None), item_flops


def _peer_problem(plain: PlainFile, run: Run, workload) -> str:
    """Why a plain file cannot run this workload as given (one line), or ''."""
    label = plain.peer.label
    rt = get_runtime(run.runtime)
    wrong = [f"{i.name} {i.dtype}" for i in plain.inputs if i.dtype not in rt.feeds]
    if wrong:
        return f"{label} takes {', '.join(wrong)}; the {rt.label or rt.name} backend feeds {'/'.join(rt.feeds)} ids"
    longest = max(len(f["input_ids"]) for item in workload.items for f in item.features)
    if not plain.dynamic_seq and longest > plain.seq_len:
        return (f"{label} takes exactly {plain.seq_len} tokens and the workload has inputs of {longest}: "
                f"use --seq-len {plain.seq_len}")
    return ""


def _items_as(plain: PlainFile, workload) -> list[Item]:
    """The workload's items keyed by the file's own input names (a feature the tokenizer does not
    give, e.g. token_type_ids for a DistilBERT tokenizer, is zeros): what its worker feeds."""
    pairs = [(i.name, i.feature) for i in plain.inputs]
    if all(name == feature for name, feature in pairs) and all(
            feature in f for _, feature in pairs for item in workload.items[:1] for f in item.features):
        return workload.items
    return [item.model_copy(update={"features": [{name: f.get(feature) or [0] * len(f["input_ids"])
                                                  for name, feature in pairs} for f in item.features]})
            for item in workload.items]


def model_facts(model: str, task: str, runs: list[Run], plan: BenchPlan | None = None,
                 bundles: dict[Path, Manifest] | None = None) -> ModelFacts:
    """Parameter counts and config of the model: from a given bundle's manifest, else from a bundle
    the bench exported for it (as opened for the run: building a preset model in this process costs
    ~6 s of imports), else from the model itself."""
    def from_manifest(m: Opened, folder: Path) -> ModelFacts:
        return ModelFacts(m.parameters, m.config if "vocab_size" in m.config else _config_from_folder(folder),
                          m.model_type, m.input_names)

    given = next((r for r in runs if r.bundle), None)
    if given:
        return from_manifest(given.manifest, given.bundle)
    for r in runs:
        if plan is None or not get_runtime(r.runtime).bundle_target:  # it runs the model itself: no bundle
            continue
        folder = export_folder(plan.cache, export_want(r, plan.cfg))
        if folder in (bundles or {}):
            return from_manifest(bundles[folder], folder)
    loaded = load_model(model, task)
    return ModelFacts(count_parameters(loaded.model), loaded.model.config.to_dict(), loaded.model_type,
                      loaded.input_names)


def tokenizer_for(model: str, tokenizer: str | None, runs: list[Run]):
    if tokenizer:
        return load_tokenizer(tokenizer)
    given = next((r for r in runs if r.bundle), None)
    if given:
        return load_tokenizer(tokenizer_source(given))
    if model in PRESETS:
        return preset_tokenizer(model)  # its family's own kind (BPE/SentencePiece presets too)
    return load_tokenizer(model if Path(model).expanduser().is_dir() else None)


def _config_from_folder(bundle: Path) -> dict:
    import json

    p = Path(bundle) / "config.json"
    return json.loads(p.read_text()) if p.is_file() else {}

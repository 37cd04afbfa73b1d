"""The contracts that cross a process or a file: the bundle manifest, the benchmark worker's spec and
the benchmark record. Each is a dataclass with a schema version; reading one of another version is a
one-line error naming both versions. stdlib only (the worker reads these on boards with no torch).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pocketbert.common import UsageError, to_jsonable


class Contract:
    """to_json/from_json for a dataclass whose `SCHEMA_KEY` field holds `SCHEMA`."""

    SCHEMA: ClassVar[str]
    SCHEMA_KEY: ClassVar[str] = "schema"
    WHAT: ClassVar[str] = "file"

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str = ""):
        where = where or cls.WHAT
        if not isinstance(data, dict):
            raise UsageError(f"{where}: expected a JSON object ({cls.WHAT})")
        got = data.get(cls.SCHEMA_KEY)
        if got != cls.SCHEMA:
            raise UsageError(f"{where} has {cls.SCHEMA_KEY} {got!r}, this pocketbert reads {cls.SCHEMA!r}: "
                             f"{'re-create it with this version' if got else 'not a ' + cls.WHAT}")
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in known
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise UsageError(f"{where}: {cls.WHAT} lacks {', '.join(missing)}")
        _check_annotations(cls, known, where)
        obj = cls(**known)
        obj.validate(where)
        return obj

    @classmethod
    def from_json(cls, text: str, where: str = ""):
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{where or cls.WHAT} is not valid JSON ({str(e).splitlines()[0][:100]})") from None
        return cls.from_dict(data, where)

    @classmethod
    def read(cls, path: str | Path):
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not a text {cls.WHAT}") from None
        return cls.from_json(text, str(path))

    def validate(self, where: str) -> None:
        """Type checks of the fields a reader relies on (one-line UsageError)."""


def _check_annotations(cls, data: dict[str, Any], where: str) -> None:
    """Every given field matches its annotation (str, int, float, bool, list[...], dict[...],
    X | None; one level of element types): a wrong type is a one-line error naming the field."""
    import typing

    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        hint = hints.get(name, Any)
        if _matches(value, hint):
            continue
        if isinstance(value, list) and typing.get_origin(hint) is list:
            items = {float: "numbers", int: "integers", str: "strings"}.get(typing.get_args(hint)[0], "objects")
            raise UsageError(f"{where}: {name} must be a list of {items}")
        raise UsageError(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")


def _matches(value: Any, hint: Any, depth: int = 0) -> bool:
    import types
    import typing

    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a, depth) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list or hint is list:
        return isinstance(value, list) and (depth > 0 or not args
                                            or all(_matches(v, args[0], 1) for v in value))
    if origin is dict or hint is dict:
        return isinstance(value, dict) and (depth > 0 or not args
                                            or all(_matches(v, args[1], 1) for v in value.values()))
    return True  # other annotations: the class's validate() checks them


def _check_types(obj, where: str, spec: dict[str, type | tuple[type, ...]]) -> None:
    for name, types in spec.items():
        value = getattr(obj, name)
        if not isinstance(value, types) or isinstance(value, bool) and bool not in (
                types if isinstance(types, tuple) else (types,)):
            raise UsageError(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")


# ---------------------------------------------------------------------------------------- manifest

@dataclass
class Manifest(Contract):
    """manifest.json of a bundle: what the model file is and how to feed it. Shapes use
    "batch"/"seq" for dynamic axes."""

    SCHEMA: ClassVar[str] = "pocketbert-bundle/1"
    SCHEMA_KEY: ClassVar[str] = "format"
    WHAT: ClassVar[str] = "bundle manifest"

    target: str  # backend name (executorch, onnx, coreml, ...)
    precision: str
    task: str
    model_type: str  # bert | distilbert
    source: str  # preset:NAME, a folder, hub:ID
    model_file: str  # name of the model file/folder in the bundle
    seq_len: int  # the longest sequence the file accepts
    seq_lens: list[int]  # accepted lengths (enumerated) or [max] when dynamic
    dynamic_seq: bool
    inputs: list[dict[str, Any]]  # [{name, dtype, shape}]
    outputs: list[dict[str, Any]]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {bytes, sha256}
    label_names: list[str] = field(default_factory=list)
    special_tokens: dict[str, Any] = field(default_factory=dict)  # cls/sep/pad/mask/unk ids
    do_lower_case: bool = True
    parameters: dict[str, int] = field(default_factory=dict)  # total, non_embedding
    parity: dict[str, Any] = field(default_factory=dict)
    task_eval: dict[str, Any] | None = None
    export_seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)  # backend-specific facts
    config: dict[str, Any] = field(default_factory=dict)  # the resolved export config
    versions: dict[str, str] = field(default_factory=dict)
    git_revision: str = "unknown"
    created_utc: str = ""
    format: str = SCHEMA

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.inputs]

    def validate(self, where: str) -> None:
        _check_types(self, where, {"target": str, "precision": str, "task": str, "model_file": str,
                                   "seq_len": int, "seq_lens": list, "dynamic_seq": bool, "inputs": list,
                                   "outputs": list, "files": dict, "parameters": dict})
        for spec in self.inputs:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise UsageError(f"{where}: every input needs a name")
        for name, meta in self.files.items():
            if not isinstance(meta, dict) or not isinstance(meta.get("bytes"), int) \
                    or not isinstance(meta.get("sha256"), str):
                raise UsageError(f"{where}: files[{name!r}] needs bytes and sha256")
        if "/" in self.model_file or self.model_file.startswith(".") or self.model_file not in self.files:
            raise UsageError(f"{where}: model_file {self.model_file!r} is not one of the bundle's files")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if d.get("task_eval") is None:
            d.pop("task_eval", None)
        return {"format": d.pop("format"), **d}


# ----------------------------------------------------------------------------------- worker spec

@dataclass
class WorkerSpec(Contract):
    """What one benchmark worker process runs: `python -m bench.worker SPEC.json RESULT.json`."""

    SCHEMA: ClassVar[str] = "pocketbert-worker/1"
    WHAT: ClassVar[str] = "worker spec"

    kind: str = "run"  # run: time a model over items; gemm: the machine's GEMM peak
    threads: int | None = None  # threads for the runtime (None: its default)
    runtime: str = ""  # backend name
    precision: str = "fp32"
    model: str = ""  # model spec (backends that run the model directly, e.g. pytorch)
    task: str = "question-answering"
    items_path: str = ""  # JSON items (bench.workloads.save_items)
    model_path: str = ""  # the bundle's model file (bundle backends)
    input_names: list[str] = field(default_factory=list)
    shape: str = "dynamic"  # fixed: pad to seq_len; dynamic: real length
    seq_len: int = 128
    warmup: int = 3  # untimed calls after the first
    overhead_check: bool = False  # also time a bare loop
    quiet: bool = False  # no progress bar
    label: str = ""  # progress-bar label
    probe_program: str = ""  # ExecuTorch rows: XNNPACK GEMM probe .pte (bench.machine); absent: torch's GEMM
    # re-run probes + timed loop in this process, up to this many times, when only the GEMM pace moved
    # (bench.trust.judge: noisy, and /proc saw no one else): no re-import, no reload (PyTorch: ~8 s saved)
    remeasure: int = 0
    schema: str = SCHEMA

    def validate(self, where: str) -> None:
        if self.kind not in ("run", "gemm"):
            raise UsageError(f"{where}: kind {self.kind!r} is not run or gemm")


# ----------------------------------------------------------------------------------------- record

@dataclass
class Record(Contract):
    """One benchmark run (model x runtime x precision x workload x shape x device). Raw samples are
    kept (latency_ms, tokenize_ms, postprocess_ms per item); `bench.records.derive` fills `stats` and
    the totals from them. Skipped and failed runs are records too (status + reason)."""

    SCHEMA: ClassVar[str] = "pocketbert-bench/1"
    WHAT: ClassVar[str] = "benchmark record"

    run_id: str
    model: str
    runtime: str
    precision: str
    workload: str
    shape: str
    status: str = "ok"  # ok | skipped | failed
    reason: str = ""
    task: str = "question-answering"
    model_type: str = ""
    workload_source: str = ""
    seq_len: int = 0
    threads: int | None = None
    threads_effective: int | None = None
    warmup: int = 0
    batch_size: int = 1
    parameters: dict[str, int] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)  # device identity (see bench.machine)
    versions: dict[str, str] = field(default_factory=dict)
    git_revision: str = "unknown"
    created_utc: str = ""
    bundle: str | None = None
    model_file_bytes: int | None = None
    gemm_peak_gflops: float | None = None  # the better of the worker's GEMM probes around its timed loop
    gemm_peak_kind: str = ""  # fp32 | int8: whose GEMM peak gemm_peak_gflops and fraction_of_peak refer to
    rounds: int = 1  # times the run was visited (--rounds, rotated order); latency_ms is the per-item median
    # trust evidence (bench.trust): noisy, reasons, load_before/after (1-min load average),
    # other_cpu_cores and steal_pct during the loop, gemm_before/after_gflops, probe_drift, cv
    # (robust spread of latency per FLOP), fraction_of_peak, attempt; per-round dicts under "rounds"
    trust: dict[str, Any] = field(default_factory=dict)
    # raw samples, one per item
    item_ids: list[str] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)  # model time (a question sums its windows)
    tokenize_ms: list[float] = field(default_factory=list)
    postprocess_ms: list[float] = field(default_factory=list)
    rounds_latency_ms: list[list[float]] = field(default_factory=list)  # each round's raw latency_ms (rounds > 1)
    # run facts
    import_ms: float | None = None  # the runtime's Python modules, before load_ms's clock starts
    load_ms: float | None = None  # the model file into a ready runtime (what an app pays at start)
    first_inference_ms: float | None = None
    n_items: int = 0
    n_model_calls: int = 0
    tokens: dict[str, Any] = field(default_factory=dict)  # real, fed, padding_waste
    flops_total: int | None = None
    flops_per_item_mean: float | None = None
    peak_rss_mb: float | None = None
    baseline_rss_mb: float | None = None
    runtime_rss_mb: float | None = None
    harness_overhead: dict[str, Any] | None = None
    answers_sample: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # every item's answer (QA workloads), in item order
    # the answers scored against the workload's gold (SQuAD: official EM/F1 in percent, n questions);
    # None when the workload has no gold (synthetic) or the device kept no answers
    answer_quality: dict[str, Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)  # source-specific facts (e.g. what a device app cannot give)
    device_state: dict[str, Any] | None = None  # governor, frequency caps, temperatures before/after; throttle warnings
    # derived from the samples by bench.records.derive
    stats: dict[str, Any] = field(default_factory=dict)
    total_model_s: float | None = None
    total_end_to_end_s: float | None = None
    throughput_items_per_s: float | None = None
    achieved_gflops: float | None = None
    fraction_of_peak: float | None = None
    schema: str = SCHEMA

    def validate(self, where: str) -> None:
        _check_types(self, where, {"model": str, "runtime": str, "precision": str, "workload": str,
                                   "shape": str, "status": str, "latency_ms": list, "machine": dict})
        if self.status not in ("ok", "skipped", "failed"):
            raise UsageError(f"{where}: status {self.status!r} is not ok, skipped or failed")
        if self.status == "ok":
            for name in ("latency_ms", "tokenize_ms", "postprocess_ms"):
                values = getattr(self, name)
                if not isinstance(values, list) or not all(
                        isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
                    raise UsageError(f"{where}: {name} must be a list of numbers")
            if not self.latency_ms:
                raise UsageError(f"{where}: an ok record needs latency samples")
            if not (len(self.latency_ms) == len(self.tokenize_ms) == len(self.postprocess_ms)):
                raise UsageError(f"{where}: latency/tokenize/postprocess sample counts differ")

"""The contracts that cross a process or a file: the bundle manifest, the benchmark worker's spec and
result, the benchmark record and its profile. Each is a pydantic v2 model with a schema version:
types, ranges and cross-field rules are declared on the fields and checked by pydantic once, when a
file is read (`read` / `from_json` / `from_dict`) or a model is built; a bad file is a one-line
UsageError naming the file and the field, and one of another version names both versions.

pydantic rather than msgspec: it is already installed with the toolchain, its field constraints
(ranges, patterns, literals) and model validators carry every rule these files had, and its error
locations name the field (inputs.0.dtype). The worker on a board needs it too (bench/devices/board.py
checks for it next to the runtime's own modules).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, model_validator

from pocketbert.common import UsageError
from pocketbert.contract_base import Contract, Count, FileName, Free, Ms, Name, Ops, Pct, Sha256, Strict
from pocketbert.contract_parts import Delegation, FileEntry, Item, TensorSpec  # noqa: F401 - re-exported
from pocketbert.families import TOKENIZER_KINDS
from pocketbert.record_parts import Loop, Machine, Parameters, Quality, Stats, Tokens, Trust

MAX_SEQ_LEN = 4096  # the longest sequence `pocketbert export` makes (its --seq-len bound)
PROFILE_CLASSES = ("int8 GEMM", "fp32 GEMM", "attention", "normalisation", "activation", "embedding/gather",
                   "data movement", "other")  # pocketbert.profile.CLASSES: the same for every runtime


def manifest_digest(data: dict[str, Any]) -> str:
    """sha256 of a manifest's fields (all but manifest_sha256 itself), canonical JSON: the manifest
    is covered by the bundle's integrity check as its files are."""
    rest = {k: v for k, v in data.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---------------------------------------------------------------------------------------- manifest

class Manifest(Contract):
    """manifest.json of a bundle: what the model file is and how to feed it. Shapes use
    "batch"/"seq" for dynamic axes."""

    SCHEMA: ClassVar[str] = "pocketbert-bundle/2"  # 2: delegation
    OLDER: ClassVar[tuple[str, ...]] = ("pocketbert-bundle/1",)  # read with delegation None
    SCHEMA_KEY: ClassVar[str] = "format"
    WHAT: ClassVar[str] = "bundle manifest"

    format: str = SCHEMA
    target: Name  # backend name (executorch, onnx, coreml, ...)
    precision: Name
    task: Name
    model_type: Name  # the config's model_type (pocketbert.families)
    source: str  # preset:NAME, a folder, hub:ID
    model_file: str  # name of the model file/folder in the bundle
    seq_len: Annotated[int, Field(ge=1, le=MAX_SEQ_LEN)]  # the longest sequence the file accepts
    seq_lens: Annotated[list[Annotated[int, Field(ge=1, le=MAX_SEQ_LEN)]], Field(min_length=1)]  # enumerated, or [max]
    dynamic_seq: bool
    inputs: Annotated[list[TensorSpec], Field(min_length=1)]
    outputs: Annotated[list[TensorSpec], Field(min_length=1)]
    files: dict[FileName, FileEntry] = Field(default_factory=dict)  # every file of the bundle but the manifest
    label_names: list[str] = Field(default_factory=list)
    special_tokens: dict[str, Annotated[int, Field(ge=0, le=1 << 24)] | None] = Field(default_factory=dict)  # cls/sep/...
    do_lower_case: bool = True
    tokenizer_kind: Literal[TOKENIZER_KINDS] = "wordpiece"  # type: ignore[valid-type] # the family's; the app runs wordpiece
    parameters: dict[str, Annotated[int, Field(ge=0, le=1 << 44)]] = Field(default_factory=dict)  # total, non_embedding
    parity: Free = Field(default_factory=dict)
    task_eval: Free | None = None
    export_seconds: Ms = 0.0
    notes: Free = Field(default_factory=dict)  # backend-specific facts
    delegation: Delegation | None = None  # the graph's share in the runtime's fast path (None: not counted
    # for this target, or a pocketbert-bundle/1 manifest)
    config: Free = Field(default_factory=dict)  # the resolved export config
    versions: dict[str, str] = Field(default_factory=dict)
    git_revision: str = "unknown"
    created_utc: str = ""
    manifest_sha256: Annotated[str, Field(pattern=r"^([0-9a-f]{64})?$")] = ""  # of the other fields (to_dict fills it)

    def __eq__(self, other: object) -> bool:  # the same bundle whatever digest it was read with
        return isinstance(other, Manifest) and self.model_dump(exclude={"manifest_sha256"}) == other.model_dump(
            exclude={"manifest_sha256"})

    __hash__ = None  # type: ignore[assignment]

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @model_validator(mode="after")
    def _consistent(self):
        if "/" in self.model_file or self.model_file.startswith(".") or self.model_file not in self.files:
            raise ValueError(f"model_file {self.model_file!r} is not one of the bundle's files")
        if max(self.seq_lens) != self.seq_len:
            raise ValueError(f"seq_lens {self.seq_lens} does not end at seq_len {self.seq_len}")
        return self

    @classmethod
    def from_dict(cls, data: Any, where: str = ""):
        obj = super().from_dict(data, where)  # types and ranges first: they name the field
        where = where or cls.WHAT
        got = data.get("manifest_sha256")
        if not got:
            raise UsageError(f"{where}: no manifest_sha256 (written by hand or by an older pocketbert): "
                             "re-export the bundle")
        if got != manifest_digest(data):
            raise UsageError(f"{where}: the manifest was edited after export (its fields do not match "
                             "manifest_sha256): re-export the bundle")
        return obj

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump(mode="json", by_alias=True)
        for optional in ("task_eval", "delegation"):
            if d.get(optional) is None:
                d.pop(optional, None)
        d["manifest_sha256"] = manifest_digest(d)
        return d


# ----------------------------------------------------------------------------------- worker spec

class WorkerSpec(Contract):
    """What one benchmark worker process runs: `python -m bench.worker SPEC.json RESULT.json`. It carries
    the items it times, so a device gets one file (a board: the spec pushed next to the bundle)."""

    SCHEMA: ClassVar[str] = "pocketbert-worker/2"  # 2: the items in the spec (1: an items file beside it)
    WHAT: ClassVar[str] = "worker spec"
    # the items of a full SQuAD dev pass at --seq-len 384 make a spec of ~150 MB
    LIMIT_BYTES: ClassVar[int] = 1 << 30

    schema_: str = Field(SCHEMA, alias="schema")
    threads: Annotated[int, Field(ge=0, le=1 << 16)] | None = None  # threads for the runtime (None: its default)
    runtime: str = ""  # backend name
    precision: str = "fp32"
    model: str = ""  # model spec (backends that run the model directly, e.g. pytorch)
    task: str = "question-answering"
    items: list[Item] = Field(default_factory=list)  # what the timed loop feeds, in order (bench.workloads)
    model_path: str = ""  # the bundle's model file (bundle backends)
    input_names: list[str] = Field(default_factory=list)
    shape: Literal["fixed", "dynamic"] = "dynamic"  # fixed: pad to seq_len; dynamic: real length
    seq_len: Annotated[int, Field(ge=1, le=MAX_SEQ_LEN)] = 128
    warmup: Annotated[int, Field(ge=0)] = 3  # untimed calls after the first
    overhead_check: bool = False  # also time a bare loop
    quiet: bool = False  # no progress bar
    label: str = ""  # progress-bar label
    probe_program: str = ""  # ExecuTorch rows: XNNPACK GEMM probe .pte (bench.machine); absent: torch's GEMM
    # re-run probes + timed loop here up to this many times when only the GEMM pace moved (bench.trust.judge)
    remeasure: Annotated[int, Field(ge=0)] = 0
    profile: bool = False  # after the timed loop, one more pass under the runtime's own profiler (Runtime.profile)


# ---------------------------------------------------------------------------------------- profile

class Profile(Strict):
    """A record's per-operator profile (`bench --profile`, pocketbert/profile.py): the runtime's own
    profiler over one more pass of the record's calls, timed apart from the plain loop. ms are totals
    over the `calls`; shares are of events_ms (what the profiler attributed to operators)."""

    WHAT: ClassVar[str] = "profile"
    tool: str  # the profiler ("onnxruntime profiler", "torch.profiler", "ETDump + Inspector")
    status: Literal["ok", "unavailable"] = "ok"  # unavailable: why says why
    why: str = ""
    level: Literal["operator", "delegate"] = "operator"  # delegate: a delegate's internals are one event each
    note: str = ""
    calls: Count = 0  # model calls profiled
    wall_ms: Ms = 0.0  # the profiled loop's wall time (profiler overhead included)
    events_ms: Ms = 0.0  # the operator events' sum (= sum of classes_ms)
    classes_ms: dict[Literal[PROFILE_CLASSES], Ms] = Field(default_factory=dict)  # type: ignore[valid-type]
    classes_pct: dict[Literal[PROFILE_CLASSES], Pct] = Field(default_factory=dict)  # type: ignore[valid-type]
    ops_ms: dict[str, Ms] = Field(default_factory=dict)  # operator kind -> ms (the raw per-kind totals)

    @model_validator(mode="after")
    def _events_add_up(self):
        if abs(sum(self.classes_ms.values()) - self.events_ms) > 1e-3 * max(1.0, self.events_ms):
            raise ValueError(f"events_ms {self.events_ms} is not the sum of classes_ms")
        return self


# --------------------------------------------------------------------------------- worker result

class WorkerResult(Contract):
    """What one worker run gives back (RESULT.json of `python -m bench.worker`, or what a device
    measured its own way): the raw samples and trust evidence of its timed loop, or an error, or a
    record the device made itself (a phone app, minibench). Every Device returns one."""

    SCHEMA: ClassVar[str] = "pocketbert-worker-result/1"
    WHAT: ClassVar[str] = "worker result"

    schema_: str = Field(SCHEMA, alias="schema")
    error: str = ""  # the run failed: why (one line)
    record: Free | None = None  # a record the device made itself (bench.record_build merges it)
    log: str = ""  # the worker's library output (the harness appends it to bench.log)
    import_ms: Ms | None = None  # None: a device that does not time its imports apart
    load_ms: Ms | None = None
    first_inference_ms: Ms | None = None
    latency_ms: list[Ms] = Field(default_factory=list)  # model time per item
    postprocess_ms: list[Ms] = Field(default_factory=list)
    loop_s: Ms | None = None  # the whole timed loop
    bare_loop_s: Ms | None = None  # overhead check: the same calls with no timing
    null_loop_s: Ms | None = None  # overhead check: the timed loop around a do-nothing runner
    trust: Free = Field(default_factory=dict)  # evidence (bench.worker.trust_facts); verdict once judged
    threads_effective: Annotated[int, Field(ge=1)] | None = None  # the runtime's own count (Runtime.load's facts)
    model_bytes: Count | None = None  # runtimes that hold the model in memory (no file)
    baseline_rss_mb: Ms | None = None
    peak_rss_mb: Ms | None = None
    answers_sample: list[str] = Field(default_factory=list)
    answers: list[str] = Field(default_factory=list)
    features_per_item: list[int] = Field(default_factory=list)
    tokens_fed: list[int] = Field(default_factory=list)
    seq_lens_fed: list[list[int]] = Field(default_factory=list)
    device_state: Free | None = None  # remote devices: governor/temperatures before and after
    profile: Profile | None = None  # --profile: the runtime's per-operator profile

    @model_validator(mode="after")
    def _samples(self, info: ValidationInfo):
        if (info.context or {}).get("complete") and not self.error and self.record is None and (not self.latency_ms
                                                       or len(self.latency_ms) != len(self.postprocess_ms)):
            raise ValueError("a worker result needs one latency and one postprocess sample per item")
        return self


# ----------------------------------------------------------------------------------------- record

class Record(Contract):
    """One benchmark run (model x runtime x precision x workload x shape x device). Raw samples are
    kept (latency_ms, tokenize_ms, postprocess_ms per item); `bench.records.derive` fills `stats` and
    the totals from them. Skipped and failed runs are records too (status + reason)."""

    SCHEMA: ClassVar[str] = "pocketbert-bench/1"
    WHAT: ClassVar[str] = "benchmark record"

    schema_: str = Field(SCHEMA, alias="schema")
    run_id: str
    model: str
    runtime: str
    precision: str
    workload: str
    shape: str
    status: Literal["ok", "skipped", "failed"] = "ok"
    reason: str = ""
    task: str = "question-answering"
    model_type: str = ""
    workload_source: str = ""
    seq_len: Annotated[int, Field(ge=0, le=1 << 20)] = 0
    # threads 0 asks for the runtime's default (the phone app's protocol; threads_effective says what it was)
    threads: Annotated[int, Field(ge=0, le=1 << 16)] | None = None
    threads_effective: Annotated[int, Field(ge=1, le=1 << 16)] | None = None
    warmup: Annotated[int, Field(ge=0, le=1 << 20)] = 0
    batch_size: Annotated[int, Field(ge=1, le=1 << 16)] = 1
    parameters: Parameters = Field(default_factory=Parameters)
    machine: Machine = Field(default_factory=Machine)  # device identity (see bench.machine)
    versions: dict[str, str] = Field(default_factory=dict)
    git_revision: str = "unknown"
    created_utc: str = ""
    bundle: str | None = None
    model_file_bytes: Count | None = None
    model_file_sha256: Sha256 | None = None  # of the file timed: as opened, and checked again after its last round
    delegated_pct: Pct | None = None  # the bundle manifest's Delegation.delegated_pct (None: not counted)
    delegate_partitions: Ops | None = None  # ...and its partitions (None: a target without delegates)
    gemm_peak_gflops: Ms | None = None  # the better of the worker's GEMM probes around its timed loop
    gemm_peak_kind: str = ""  # fp32 | int8: whose GEMM peak gemm_peak_gflops and fraction_of_peak refer to
    rounds: Annotated[int, Field(ge=1, le=1 << 16)] = 1  # visits (--rounds, rotated); latency_ms: per-item median
    trust: Trust = Field(default_factory=Trust)  # evidence and verdict (bench.trust; each round's under "rounds")
    # raw samples, one per item
    item_ids: list[str] = Field(default_factory=list)
    latency_ms: list[Ms] = Field(default_factory=list)  # model time (a question sums its windows)
    tokenize_ms: list[Ms] = Field(default_factory=list)
    postprocess_ms: list[Ms] = Field(default_factory=list)
    rounds_latency_ms: list[list[Ms]] = Field(default_factory=list)  # each round's raw latency_ms (rounds > 1)
    # run facts
    import_ms: Ms | None = None  # the runtime's Python modules, before load_ms's clock starts
    load_ms: Ms | None = None  # the model file into a ready runtime (what an app pays at start)
    first_inference_ms: Ms | None = None
    n_items: Annotated[int, Field(ge=0, le=1 << 32)] = 0
    n_model_calls: Count = 0
    tokens: Tokens = Field(default_factory=Tokens)  # real, fed, padding_waste
    # FLOPs of the whole run: 120 DistilBERT-base questions at 384 tokens are ~4e12, past Count's 2**40
    flops_total: Annotated[int, Field(ge=0, le=1 << 62)] | None = None
    flops_per_item_mean: Ms | None = None
    peak_rss_mb: Ms | None = None
    baseline_rss_mb: Ms | None = None
    runtime_rss_mb: Ms | None = None
    harness_overhead: Loop | None = None
    answers_sample: list[str] = Field(default_factory=list)
    answers: list[str] = Field(default_factory=list)  # every item's answer (QA workloads), in item order
    answer_quality: Quality | None = None  # vs the workload's gold (SQuAD EM/F1 %); None: no gold or no answers
    notes: Free = Field(default_factory=dict)  # source-specific facts (e.g. what a device app cannot give)
    profile: Profile | None = None  # per-operator profile (bench --profile), or None
    device_state: Free | None = None  # governor, frequency caps, temperatures before/after; throttle warnings
    # derived from the samples by bench.records.derive
    stats: Stats = Field(default_factory=Stats)
    total_model_s: Ms | None = None
    total_end_to_end_s: Ms | None = None
    throughput_items_per_s: Ms | None = None
    achieved_gflops: Ms | None = None
    fraction_of_peak: Ms | None = None

    source: str = Field("", exclude=True)  # the file it was read from (load_records; a farm's: zip!member); not written

    @property
    def int8_chosen_elsewhere(self) -> str | None:  # bench.prepare's note: int8 mode timed on another CPU
        return self.notes.get("int8_chosen_elsewhere")

    @model_validator(mode="after")
    def _samples(self, info: ValidationInfo):
        if self.status == "ok" and (info.context or {}).get("complete"):
            if not self.latency_ms:
                raise ValueError("an ok record needs latency samples")
            if not (len(self.latency_ms) == len(self.tokenize_ms) == len(self.postprocess_ms)):
                raise ValueError("latency/tokenize/postprocess sample counts differ")
        return self

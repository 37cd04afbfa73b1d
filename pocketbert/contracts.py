"""The contracts that cross a process or a file: the bundle manifest, the benchmark worker's spec and
result, and the benchmark record. Each is a dataclass with a schema version; reading one of another version is a
one-line error naming both versions. stdlib only (the worker reads these on boards with no torch).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pocketbert.common import UsageError, to_jsonable
from pocketbert.families import TOKENIZER_KINDS


class Contract:
    """to_json/from_json for a dataclass whose `SCHEMA_KEY` field holds `SCHEMA`."""

    SCHEMA: ClassVar[str]
    SCHEMA_KEY: ClassVar[str] = "schema"
    WHAT: ClassVar[str] = "file"
    OLDER: ClassVar[tuple[str, ...]] = ()  # earlier versions this one still reads (fields they lack: defaults)

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
        if got != cls.SCHEMA and got not in cls.OLDER:
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


# Range checks: a value of the right type can still be one no writer of ours produces (an edited
# seq_len of 1e9, a NaN latency); each is a one-line UsageError naming the field.

MAX_SEQ_LEN = 4096  # the longest sequence `pocketbert export` makes (its --seq-len bound)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")  # backend, precision, task, model type names
DTYPES = ("int64", "int32", "float32", "float16", "bool")
SHA256 = re.compile(r"[0-9a-f]{64}")


def _bad(where: str, name: str, value: Any, why: str) -> UsageError:
    shown = repr(value)
    return UsageError(f"{where}: {name} {shown[:60] + ('...' if len(shown) > 60 else '')} {why}")


def check_number(where: str, name: str, value: Any, lo: float = 0, hi: float = math.inf,
                 integer: bool = False, optional: bool = False) -> None:
    """`value` is a finite number (an int when `integer`) in [lo, hi] (None too when `optional`)."""
    if value is None and optional:
        return
    kinds = (int,) if integer else (int, float)
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise _bad(where, name, value, "is not " + ("an integer" if integer else "a number"))
    if not math.isfinite(value) or not lo <= value <= hi:
        raise _bad(where, name, value, f"is out of range (expected {lo:g} to {hi:g})")


def check_numbers(where: str, name: str, values: Any, lo: float = 0, hi: float = math.inf) -> None:
    if not isinstance(values, list):
        raise _bad(where, name, values, "is not a list of numbers")
    for i, v in enumerate(values):
        check_number(where, f"{name}[{i}]", v, lo, hi)


def check_name(where: str, name: str, value: Any) -> None:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise _bad(where, name, value, "is not a name (letters, digits, _ . + -; at most 64)")


NESTING_LIMIT = 16  # a record's deepest real field is ~6 levels down (notes.peer.inputs[0].shape[0]); the
# limit only stops a hostile file's recursion bomb


def check_nested_numbers(where: str, name: str, value: Any, depth: int = 0) -> None:
    """Every number inside `value` (dicts and lists, NESTING_LIMIT levels deep at most) is finite."""
    if depth > NESTING_LIMIT:
        raise _bad(where, name, "...", "is nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(where, name, value, "is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            check_nested_numbers(where, f"{name}.{k}", v, depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_nested_numbers(where, f"{name}[{i}]", v, depth + 1)


def manifest_digest(data: dict[str, Any]) -> str:
    """sha256 of a manifest's fields (all but manifest_sha256 itself), canonical JSON: the manifest
    is covered by the bundle's integrity check as its files are."""
    rest = {k: v for k, v in data.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---------------------------------------------------------------------------------------- manifest

class Part:
    """A typed part of a contract (the manifest's delegation, a record's profile): no schema of its own
    (its contract's covers it), read with the same type and range checks."""

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    WHAT: ClassVar[str] = "part"

    @classmethod
    def from_dict(cls, data: Any, where: str):
        where = f"{where}: {cls.WHAT}"
        if not isinstance(data, dict):
            raise UsageError(f"{where} is not a JSON object")
        missing = [n for n in cls.REQUIRED if n not in data]
        if missing:
            raise UsageError(f"{where} lacks {', '.join(missing)}")
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        _check_annotations(cls, known, where)
        obj = cls(**known)
        obj.check_ranges(where)
        return obj

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self))

    def check_ranges(self, where: str) -> None:
        """Range checks of the fields (one-line UsageError)."""


@dataclass
class Delegation(Part):
    """How much of a model file's graph runs in its runtime's fast path, counted on the graph the
    export wrote (export/targets/*: each target says what its fast path is). ExecuTorch: operators
    inside XNNPACK delegates vs on portable kernels, and the delegate partitions; ONNX: nodes in ONNX
    Runtime's fused transformer and GEMM kernels vs plain ONNX nodes, and (`providers`) the share of
    nodes each mobile execution provider would take. Plumbing nodes (getitem, sym_size) are not
    operators and are not counted. Part of the manifest (its schema covers it)."""

    fast_path: str  # what "delegated" means for this file ("XNNPACK delegate", ...)
    delegated_ops: int  # operators in the fast path
    other_ops: int  # operators outside it (ExecuTorch: portable kernels; ONNX: plain nodes)
    delegated_pct: float  # 100 * delegated_ops / (delegated_ops + other_ops)
    partitions: int | None = None  # delegate partitions (subgraphs handed to the delegate); None: no such thing
    delegated_by_kind: dict[str, int] = field(default_factory=dict)  # operator kind -> count
    other_by_kind: dict[str, int] = field(default_factory=dict)
    # execution provider -> {"nodes_pct", "partitions", "unsupported_ops"} from an offline analysis, or
    # {"nodes_pct": None, "why": ...} where none exists
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)

    REQUIRED: ClassVar[tuple[str, ...]] = ("fast_path", "delegated_ops", "other_ops", "delegated_pct")
    WHAT: ClassVar[str] = "delegation"

    @classmethod
    def count(cls, fast_path: str, delegated: dict[str, int], other: dict[str, int], **kw) -> "Delegation":
        """From per-kind counts (the only constructor writers use: the totals and share derive once)."""
        d, o = sum(delegated.values()), sum(other.values())
        return cls(fast_path, d, o, round(100 * d / (d + o), 2) if d + o else 0.0,
                   delegated_by_kind=dict(sorted(delegated.items())), other_by_kind=dict(sorted(other.items())), **kw)

    def check_ranges(self, where: str) -> None:
        check_number(where, "delegated_ops", self.delegated_ops, 0, 1 << 24, integer=True)
        check_number(where, "other_ops", self.other_ops, 0, 1 << 24, integer=True)
        check_number(where, "delegated_pct", self.delegated_pct, 0, 100)
        check_number(where, "partitions", self.partitions, 0, 1 << 24, integer=True, optional=True)
        for kind in ("delegated", "other"):
            counts = getattr(self, f"{kind}_by_kind")
            for name, n in counts.items():
                check_number(where, f"{kind}_by_kind.{name}", n, 0, 1 << 24, integer=True)
            if counts and sum(counts.values()) != getattr(self, f"{kind}_ops"):
                raise _bad(where, f"{kind}_ops", getattr(self, f"{kind}_ops"), f"is not the sum of {kind}_by_kind")
        total = self.delegated_ops + self.other_ops
        if total and abs(100 * self.delegated_ops / total - self.delegated_pct) > 0.01:
            raise _bad(where, "delegated_pct", self.delegated_pct, "does not match delegated_ops / all ops")
        for ep, facts in self.providers.items():
            if not isinstance(facts, dict):
                raise _bad(where, f"providers.{ep}", facts, "is not an object")
            check_number(where, f"providers.{ep}.nodes_pct", facts.get("nodes_pct"), 0, 100, optional=True)
            check_number(where, f"providers.{ep}.partitions", facts.get("partitions"), 0, 1 << 24,
                         integer=True, optional=True)
            if facts.get("nodes_pct") is None and not isinstance(facts.get("why"), str):
                raise _bad(where, f"providers.{ep}", facts, "has no nodes_pct and no why")


@dataclass
class Manifest(Contract):
    """manifest.json of a bundle: what the model file is and how to feed it. Shapes use
    "batch"/"seq" for dynamic axes."""

    SCHEMA: ClassVar[str] = "pocketbert-bundle/2"  # 2: delegation
    OLDER: ClassVar[tuple[str, ...]] = ("pocketbert-bundle/1",)  # read with delegation None
    SCHEMA_KEY: ClassVar[str] = "format"
    WHAT: ClassVar[str] = "bundle manifest"

    target: str  # backend name (executorch, onnx, coreml, ...)
    precision: str
    task: str
    model_type: str  # the config's model_type (pocketbert.families)
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
    tokenizer_kind: str = "wordpiece"  # wordpiece | bpe | sentencepiece (the family's; the app runs wordpiece)
    parameters: dict[str, int] = field(default_factory=dict)  # total, non_embedding
    parity: dict[str, Any] = field(default_factory=dict)
    task_eval: dict[str, Any] | None = None
    export_seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)  # backend-specific facts
    delegation: Delegation | None = None  # how much of the graph runs in the runtime's fast path (None: not
    # counted for this target, or a pocketbert-bundle/1 manifest)
    config: dict[str, Any] = field(default_factory=dict)  # the resolved export config
    versions: dict[str, str] = field(default_factory=dict)
    git_revision: str = "unknown"
    created_utc: str = ""
    manifest_sha256: str = field(default="", compare=False)  # manifest_digest of the other fields (to_dict fills it; read checks it)
    format: str = SCHEMA

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.inputs]

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
        if self.delegation is not None and not isinstance(self.delegation, Delegation):
            self.delegation = Delegation.from_dict(self.delegation, where)
        self.check_ranges(where)

    def check_ranges(self, where: str) -> None:
        for name in ("target", "precision", "task", "model_type"):
            check_name(where, name, getattr(self, name))
        if self.tokenizer_kind not in TOKENIZER_KINDS:
            raise _bad(where, "tokenizer_kind", self.tokenizer_kind, f"is not one of {', '.join(TOKENIZER_KINDS)}")
        check_number(where, "seq_len", self.seq_len, 1, MAX_SEQ_LEN, integer=True)
        if not self.seq_lens:
            raise _bad(where, "seq_lens", self.seq_lens, "is empty")
        for i, n in enumerate(self.seq_lens):
            check_number(where, f"seq_lens[{i}]", n, 1, self.seq_len, integer=True)
        if max(self.seq_lens) != self.seq_len:
            raise _bad(where, "seq_lens", self.seq_lens, f"does not end at seq_len {self.seq_len}")
        if not self.inputs or not self.outputs:
            raise UsageError(f"{where}: a model needs inputs and outputs")
        for kind in ("inputs", "outputs"):
            for i, spec in enumerate(getattr(self, kind)):
                if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
                    raise _bad(where, f"{kind}[{i}]", spec, "needs a name")
                if spec.get("dtype") not in DTYPES:
                    raise _bad(where, f"{kind}[{i}].dtype", spec.get("dtype"), f"is not one of {', '.join(DTYPES)}")
                shape = spec.get("shape")
                if not isinstance(shape, list) or not 1 <= len(shape) <= 4:
                    raise _bad(where, f"{kind}[{i}].shape", shape, "is not a list of 1 to 4 dimensions")
                for d in shape:  # a size, a named dynamic axis, or (CoreML) the list of enumerated sizes
                    if d not in ("batch", "seq"):
                        for size in (d if isinstance(d, list) and d else [d]):
                            check_number(where, f"{kind}[{i}].shape", size, 1, 1 << 20, integer=True)
        for name, meta in self.files.items():
            if not name or "/" in name or "\\" in name or name.startswith("."):
                raise _bad(where, "files", name, "is not a plain file name")
            check_number(where, f"files[{name!r}].bytes", meta["bytes"], 0, 1 << 40, integer=True)
            if not SHA256.fullmatch(meta["sha256"]):
                raise _bad(where, f"files[{name!r}].sha256", meta["sha256"], "is not a sha256 hex digest")
        if not all(isinstance(x, str) for x in self.label_names):
            raise _bad(where, "label_names", self.label_names, "is not a list of strings")
        for name, value in self.special_tokens.items():
            check_number(where, f"special_tokens.{name}", value, 0, 1 << 24, integer=True, optional=True)
        for name, value in self.parameters.items():
            check_number(where, f"parameters.{name}", value, 0, 1 << 44, integer=True)
        check_number(where, "export_seconds", self.export_seconds, 0)
        if self.manifest_sha256 and not SHA256.fullmatch(self.manifest_sha256):
            raise _bad(where, "manifest_sha256", self.manifest_sha256, "is not a sha256 hex digest")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        for optional in ("task_eval", "delegation"):
            if d.get(optional) is None:
                d.pop(optional, None)
        d = {"format": d.pop("format"), **d}
        d["manifest_sha256"] = manifest_digest(d)
        return d


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
    profile: bool = False  # after the timed loop, one more pass under the runtime's own profiler (Runtime.profile)
    schema: str = SCHEMA

    def validate(self, where: str) -> None:
        if self.kind not in ("run", "gemm"):
            raise UsageError(f"{where}: kind {self.kind!r} is not run or gemm")


# ---------------------------------------------------------------------------------------- profile

PROFILE_CLASSES = ("int8 GEMM", "fp32 GEMM", "attention", "normalisation", "activation", "embedding/gather",
                   "data movement", "other")  # pocketbert.profile.CLASSES: the same for every runtime


@dataclass
class Profile(Part):
    """A record's per-operator profile (`bench --profile`, pocketbert/profile.py): the runtime's own
    profiler over one more pass of the record's calls, timed apart from the plain loop. ms are totals
    over the `calls`; shares are of events_ms (what the profiler attributed to operators)."""

    tool: str  # the profiler ("onnxruntime profiler", "torch.profiler", "ETDump + Inspector")
    status: str = "ok"  # ok | unavailable (why says why)
    why: str = ""
    level: str = "operator"  # operator | delegate (a delegate's internals are one event each)
    note: str = ""
    calls: int = 0  # model calls profiled
    wall_ms: float = 0.0  # the profiled loop's wall time (profiler overhead included)
    events_ms: float = 0.0  # the operator events' sum (= sum of classes_ms)
    classes_ms: dict[str, float] = field(default_factory=dict)  # PROFILE_CLASSES -> ms
    classes_pct: dict[str, float] = field(default_factory=dict)  # PROFILE_CLASSES -> % of events_ms
    ops_ms: dict[str, float] = field(default_factory=dict)  # operator kind -> ms (the raw per-kind totals)

    REQUIRED: ClassVar[tuple[str, ...]] = ("tool", "status")
    WHAT: ClassVar[str] = "profile"

    def check_ranges(self, where: str) -> None:
        if self.status not in ("ok", "unavailable"):
            raise _bad(where, "status", self.status, "is not ok or unavailable")
        if self.level not in ("operator", "delegate"):
            raise _bad(where, "level", self.level, "is not operator or delegate")
        check_number(where, "calls", self.calls, 0, 1 << 40, integer=True)
        for name in ("wall_ms", "events_ms"):
            check_number(where, name, getattr(self, name))
        for kind in ("classes_ms", "classes_pct"):
            unknown = set(getattr(self, kind)) - set(PROFILE_CLASSES)
            if unknown:
                raise _bad(where, kind, sorted(unknown), f"are not classes ({', '.join(PROFILE_CLASSES)})")
        for name, ms in self.classes_ms.items():
            check_number(where, f"classes_ms.{name}", ms)
        for name, pct in self.classes_pct.items():
            check_number(where, f"classes_pct.{name}", pct, 0, 100)
        for name, ms in self.ops_ms.items():
            check_number(where, f"ops_ms.{name}", ms)
        if abs(sum(self.classes_ms.values()) - self.events_ms) > 1e-3 * max(1.0, self.events_ms):
            raise _bad(where, "events_ms", self.events_ms, "is not the sum of classes_ms")


# --------------------------------------------------------------------------------- worker result

@dataclass
class WorkerResult(Contract):
    """What one worker run gives back (RESULT.json of `python -m bench.worker`, or what a device
    measured its own way): the raw samples and trust evidence of its timed loop, or an error, or a
    record the device made itself (a phone app, minibench). Every Device returns one."""

    SCHEMA: ClassVar[str] = "pocketbert-worker-result/1"
    WHAT: ClassVar[str] = "worker result"

    error: str = ""  # the run failed: why (one line)
    record: dict[str, Any] | None = None  # a record the device made itself (bench.harness merges it)
    log: str = ""  # the worker's library output (the harness appends it to bench.log)
    import_ms: float | None = None  # None: a device that does not time its imports apart
    load_ms: float | None = None
    first_inference_ms: float | None = None
    latency_ms: list[float] = field(default_factory=list)  # model time per item
    postprocess_ms: list[float] = field(default_factory=list)
    loop_s: float | None = None  # the whole timed loop
    bare_loop_s: float | None = None  # overhead check: the same calls with no timing
    null_loop_s: float | None = None  # overhead check: the timed loop around a do-nothing runner
    trust: dict[str, Any] = field(default_factory=dict)  # evidence (bench.worker.trust_facts); verdict once judged
    threads_effective: int | None = None  # the runtime's own count (Runtime.load's facts)
    model_bytes: int | None = None  # runtimes that hold the model in memory (no file)
    baseline_rss_mb: float | None = None
    peak_rss_mb: float | None = None
    answers_sample: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    features_per_item: list[int] = field(default_factory=list)
    tokens_fed: list[int] = field(default_factory=list)
    seq_lens_fed: list[list[int]] = field(default_factory=list)
    device_state: dict[str, Any] | None = None  # remote devices: governor/temperatures before and after
    profile: dict[str, Any] | None = None  # --profile: the runtime's per-operator profile (a Profile's dict)
    schema: str = SCHEMA

    @classmethod
    def of(cls, result: Any, where: str = "worker result") -> WorkerResult:
        """A device's answer as a WorkerResult: one already, or a result dict of this version (the
        worker's file, a device's own dict: a missing schema is this one's, a device in this process)."""
        if isinstance(result, cls):
            return result
        if isinstance(result, dict) and cls.SCHEMA_KEY not in result:
            result = {**result, cls.SCHEMA_KEY: cls.SCHEMA}
        return cls.from_dict(result, where)

    def validate(self, where: str) -> None:
        if self.error or self.record is not None:
            return
        check_numbers(where, "latency_ms", self.latency_ms)
        check_numbers(where, "postprocess_ms", self.postprocess_ms)
        if not self.latency_ms or len(self.latency_ms) != len(self.postprocess_ms):
            raise UsageError(f"{where}: a worker result needs one latency and one postprocess sample per item")
        check_nested_numbers(where, "trust", self.trust)


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
    delegated_pct: float | None = None  # the bundle manifest's Delegation.delegated_pct (None: not counted)
    delegate_partitions: int | None = None  # ...and its partitions (None: a target without delegates)
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
    profile: Profile | None = None  # per-operator profile (bench --profile), or None
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
        if self.profile is not None and not isinstance(self.profile, Profile):
            self.profile = Profile.from_dict(self.profile, where)
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
        self.check_ranges(where)

    # numbers a report or a judge reads: finite and non-negative (None where the annotation allows it)
    OPTIONAL_AMOUNTS: ClassVar[tuple[str, ...]] = (
        "import_ms", "load_ms", "first_inference_ms", "flops_per_item_mean", "peak_rss_mb", "baseline_rss_mb",
        "runtime_rss_mb", "total_model_s", "total_end_to_end_s", "throughput_items_per_s", "achieved_gflops",
        "fraction_of_peak", "gemm_peak_gflops")
    COUNTS: ClassVar[dict[str, tuple[int, int]]] = {
        "seq_len": (0, 1 << 20), "warmup": (0, 1 << 20), "batch_size": (1, 1 << 16), "rounds": (1, 1 << 16),
        "n_items": (0, 1 << 32), "n_model_calls": (0, 1 << 40)}

    def check_ranges(self, where: str) -> None:
        for name in ("latency_ms", "tokenize_ms", "postprocess_ms"):
            check_numbers(where, name, getattr(self, name))
        for i, values in enumerate(self.rounds_latency_ms):
            check_numbers(where, f"rounds_latency_ms[{i}]", values)
        for name, (lo, hi) in self.COUNTS.items():
            check_number(where, name, getattr(self, name), lo, hi, integer=True)
        # threads 0 is a request for the runtime's default (the phone app's protocol; threads_effective
        # then says what that was); the effective count is a real one
        check_number(where, "threads", self.threads, 0, 1 << 16, integer=True, optional=True)
        check_number(where, "threads_effective", self.threads_effective, 1, 1 << 16, integer=True, optional=True)
        check_number(where, "delegated_pct", self.delegated_pct, 0, 100, optional=True)
        check_number(where, "delegate_partitions", self.delegate_partitions, 0, 1 << 24, integer=True, optional=True)
        for name in ("model_file_bytes", "flops_total"):
            check_number(where, name, getattr(self, name), 0, integer=True, optional=True)
        for name in self.OPTIONAL_AMOUNTS:
            check_number(where, name, getattr(self, name), optional=True)
        for name, value in self.parameters.items():
            check_number(where, f"parameters.{name}", value, 0, 1 << 44, integer=True)
        for name in ("real", "fed"):
            check_number(where, f"tokens.{name}", self.tokens.get(name, 0), 0)
        if not all(isinstance(x, str) for x in self.item_ids + self.answers_sample):
            raise UsageError(f"{where}: item_ids and answers_sample must be lists of strings")
        if not isinstance(self.trust.get("reasons", []), list) or not all(
                isinstance(x, str) for x in self.trust.get("reasons", [])):
            raise _bad(where, "trust.reasons", self.trust.get("reasons"), "is not a list of strings")
        for name in ("trust", "machine", "tokens", "stats", "harness_overhead", "notes", "device_state"):
            check_nested_numbers(where, name, getattr(self, name))

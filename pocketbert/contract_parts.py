"""The typed parts the contracts (pocketbert/contracts.py) are made of: a bundle's tensors, files and
delegation coverage, and the items a worker spec carries. Each is read as attributes, never by key."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from pocketbert.contract_base import Dim, Ms, Ops, Pct, Sha256, Strict

DTYPES = ("int64", "int32", "float32", "float16", "bool")


class TensorSpec(Strict):
    """One model input or output of a bundle: {name, dtype, shape}."""

    model_config = ConfigDict(extra="allow")  # kept as written: a newer writer's keys survive a re-write
    name: Annotated[str, Field(min_length=1)]
    dtype: Literal[DTYPES]  # type: ignore[valid-type]
    shape: Annotated[list[Dim], Field(min_length=1, max_length=4)]

    @property
    def feature(self) -> str:
        """The tokenizer output that feeds it: a bundle names its inputs after them."""
        return self.name


class FileEntry(Strict):
    """One file of a bundle (or a plain model file): its size and sha256, checked before it is timed."""

    bytes: Annotated[int, Field(ge=0, le=1 << 40)]
    sha256: Sha256


class ProviderFacts(Strict):
    model_config = ConfigDict(extra="allow")
    nodes_pct: Pct | None = None
    partitions: Ops | None = None
    why: str | None = None

    @model_validator(mode="after")
    def _says_why(self):
        if self.nodes_pct is None and self.why is None:
            raise ValueError("has no nodes_pct and no why")
        return self


class Delegation(Strict):
    """How much of a model file's graph runs in its runtime's fast path, counted on the graph the
    export wrote (export/targets/*: each target says what its fast path is). ExecuTorch: operators
    inside XNNPACK delegates vs on portable kernels, and the delegate partitions; ONNX: nodes in ONNX
    Runtime's fused transformer and GEMM kernels vs plain ONNX nodes, and (`providers`) the share of
    nodes each mobile execution provider would take. Plumbing nodes (getitem, sym_size) are not
    operators and are not counted. Part of the manifest (its schema covers it)."""

    WHAT: ClassVar[str] = "delegation"
    fast_path: str  # what "delegated" means for this file ("XNNPACK delegate", ...)
    delegated_ops: Ops  # operators in the fast path
    other_ops: Ops  # operators outside it (ExecuTorch: portable kernels; ONNX: plain nodes)
    delegated_pct: Pct  # 100 * delegated_ops / (delegated_ops + other_ops)
    partitions: Ops | None = None  # delegate partitions (subgraphs handed to the delegate); None: no such thing
    delegated_by_kind: dict[str, Ops] = Field(default_factory=dict)  # operator kind -> count
    other_by_kind: dict[str, Ops] = Field(default_factory=dict)
    # execution provider -> its share of nodes from an offline analysis, or why there is none
    providers: dict[str, ProviderFacts] = Field(default_factory=dict)

    @classmethod
    def count(cls, fast_path: str, delegated: dict[str, int], other: dict[str, int], **kw) -> "Delegation":
        """From per-kind counts (the only constructor writers use: the totals and share derive once)."""
        d, o = sum(delegated.values()), sum(other.values())
        return cls(fast_path=fast_path, delegated_ops=d, other_ops=o,
                   delegated_pct=round(100 * d / (d + o), 2) if d + o else 0.0,
                   delegated_by_kind=dict(sorted(delegated.items())), other_by_kind=dict(sorted(other.items())), **kw)

    @model_validator(mode="after")
    def _totals_agree(self):
        for kind in ("delegated", "other"):
            counts = getattr(self, f"{kind}_by_kind")
            if counts and sum(counts.values()) != getattr(self, f"{kind}_ops"):
                raise ValueError(f"{kind}_ops {getattr(self, f'{kind}_ops')} is not the sum of {kind}_by_kind")
        total = self.delegated_ops + self.other_ops
        if total and abs(100 * self.delegated_ops / total - self.delegated_pct) > 0.01:
            raise ValueError(f"delegated_pct {self.delegated_pct} does not match delegated_ops / all ops")
        return self


class Item(Strict):
    """One timed unit of a workload (bench.workloads): a sentence pair or a question with one or more
    windows, tokenized once in the parent. The worker spec carries the items its worker times."""

    id: str
    features: list[dict[str, list[int]]]  # one model call each; input name -> token ids (real length)
    tokenize_ms: Ms
    post: dict[str, Any] = Field(default_factory=dict)  # what post-processing needs (bench.workloads.postprocess)

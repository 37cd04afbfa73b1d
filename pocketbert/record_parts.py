"""The typed parts of a benchmark record (pocketbert.contracts.Record) that readers use by attribute:
its statistics, token counts, trust evidence and verdict, the harness-overhead check, the machine,
the parameter counts and the answer quality. Each keeps fields a newer (or another) writer added
(`extra="allow"`, finite JSON only), so a record read and written again loses nothing."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, model_serializer, model_validator

from pocketbert.contract_base import Count, Ms, Strict, _finite_json

Num = Annotated[int | float, Field(ge=0)]  # a count or an amount, kept as written (64 stays 64)


class Part(Strict):
    """A record's part: typed where read, whatever else its writer put there kept (finite JSON only)."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _extras_finite(self):
        if self.model_extra:
            _finite_json(self.model_extra)
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler):
        """Written back as read: a typed field its writer left out stays out (no `null`s added)."""
        data = handler(self)
        return {k: v for k, v in data.items() if k in self.model_fields_set or k not in type(self).model_fields}


class Summary(Part):
    """bench.stats.summarize of one list of samples ({"count": 0} for none)."""

    FIELDS: ClassVar[tuple[str, ...]] = ("count", "total", "mean", "std", "min", "max", "p50", "p90", "p99",
                                         "trimmed_mean")
    count: Count = 0
    total: float | None = None
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    trimmed_mean: float | None = None

    @property
    def complete(self) -> bool:
        return all(getattr(self, f) is not None for f in self.FIELDS)


class Stats(Part):
    """A record's statistics, each derived once from its raw samples (bench.records.derive)."""

    latency_ms: Summary | None = None
    tokenize_ms: Summary | None = None
    postprocess_ms: Summary | None = None
    end_to_end_ms: Summary | None = None

    @property
    def complete(self) -> bool:
        """Every summary stored in full (a record written before some were is derived again when read)."""
        return all(s is not None and s.complete for s in (self.latency_ms, self.tokenize_ms, self.postprocess_ms,
                                                          self.end_to_end_ms))


class Tokens(Part):
    real: Num | None = None  # tokens of the items themselves
    fed: Num | None = None  # tokens fed to the model (padding included)
    padding_waste: Ms | None = None  # 1 - real / fed (derived)


class Trust(Part):
    """Trust evidence, judged by bench.trust (noisy + reasons): load_before/after (1-min load average),
    other_cpu_cores and steal_pct during the loop, gemm_before/after_gflops, probe_drift, cv,
    fraction_of_peak, attempt; with --rounds each round's under `rounds` and the worst of each (`*_max`)."""

    noisy: bool | None = None  # None: not judged (no evidence)
    reasons: list[str] = Field(default_factory=list)
    other_cpu_cores: float | None = None  # other processes' CPU during the loop
    other_cpu_cores_max: float | None = None
    steal_pct: float | None = None
    steal_pct_max: float | None = None
    gemm_before_gflops: float | None = None
    gemm_after_gflops: float | None = None
    gemm_peak_gflops: float | None = None
    peak_kind: str | None = None
    cv: float | None = None  # robust spread of latency per FLOP

    @property
    def judged(self) -> bool:
        return self.noisy is not None

    def other_cores(self) -> float | None:
        return self.other_cpu_cores if self.other_cpu_cores is not None else self.other_cpu_cores_max

    def steal(self) -> float | None:
        return self.steal_pct if self.steal_pct is not None else self.steal_pct_max

    def summary(self) -> str:
        """'' for a trusted record, else 'NOISY: reason; reason'."""
        return "NOISY: " + "; ".join(self.reasons) if self.noisy else ""


class Loop(Part):
    """The harness-overhead check (bench --overhead-check): the timed loop vs a bare and a null one."""

    timed_loop_s: Ms | None = None
    postprocess_s: Ms | None = None
    timed_model_s: Ms | None = None
    bare_loop_s: Ms | None = None
    null_loop_s: Ms | None = None
    timed_vs_bare: float | None = None  # derived: the timed loop's excess over the bare one (noise included)
    overhead_fraction: float | None = None  # derived: null loop / model time


class Machine(Part):
    """Where a record was measured (bench.machine, a board's or a phone's facts); a farm's records
    carry `farm` (bench.farm)."""

    device: str | None = None  # None: this machine ("local")
    hostname: str | None = None
    cpu_model: str | None = None
    os: str | None = None
    physical_cores: Count | None = None
    logical_cores: Count | None = None
    isa_flags: list[str] = Field(default_factory=list)
    load_avg_1m: float | None = None
    emulated: bool | None = None
    farm: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.device or 'local'}:{self.hostname or '?'}"

    @property
    def cores(self) -> int | None:
        return self.logical_cores or self.physical_cores


class Parameters(Part):
    total: Count | None = None
    non_embedding: Count | None = None


class Quality(Part):
    """Answer quality vs the workload's gold (bench.workloads.answer_quality)."""

    metric: str = ""
    exact_match: float | None = None
    f1: float | None = None

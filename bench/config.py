"""What a bench run is asked to do (`BenchConfig`, one field per `pocketbert bench` flag) and its checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pocketbert.backends import all_precisions, get_runtime, main_job, runtime_names
from pocketbert.common import UsageError, lookup
from pocketbert.models import PRESETS


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


def run_pairs(cfg: BenchConfig) -> list[tuple[str, str]]:
    """The (runtime, precision) pairs `cfg` asks for: the main job when it names neither, else every
    runtime (default: all registered) x every precision (default: DEFAULT_PRECISIONS)."""
    if cfg.runtimes is None and cfg.precisions is None:
        return main_job()
    return [(r, p) for r in cfg.runtimes or runtime_names() for p in cfg.precisions or DEFAULT_PRECISIONS]


def validate_config(cfg: BenchConfig) -> None:
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

"""What a bench run is asked to do (`BenchConfig`, one field per `pocketbert bench` flag) and its checks.

Each field is the one source of its flag's default, choices and range (`pocketbert.knobs.knob`): the
flag is generated from it (bench/cli.py) and `validate_config` checks a value by the same rule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.devices import device_schemes
from bench.workloads import SYNTHETIC_ITEMS, check_workload
from pocketbert import argtypes as t
from pocketbert.backends import all_precisions, get_runtime, main_job, runtime_names
from pocketbert.common import UsageError, lookup
from pocketbert.knobs import check_knobs, knob
from pocketbert.models import PRESETS
from pocketbert.tasks import task_names


SHAPES = ("fixed", "dynamic")
DEFAULT_PRECISIONS = ("fp32", "int8")  # the paper's fp32 + the phone's int8
STRICT_RETRIES = 2  # --strict asks for a quiet record: two more tries before a noisy one fails the run


def _device_url(value: str) -> None:
    scheme, sep, rest = value.partition("://")
    if sep and not rest:
        raise UsageError(f"nothing after '{scheme}://'")
    lookup({s: s for s in device_schemes()}, scheme, "device kind")


workload_spec = t.data_spec(check_workload, "synthetic")
device_url = t.data_spec(_device_url, "local")


@dataclass
class BenchConfig:
    models: list[str] = knob(factory=lambda: ["distilbert-base"], rule=t.model, flag="--model")  # presets or HF folders
    # None: every registered runtime (both None: the main-job pairs)
    runtimes: list[str] | None = knob(None, rule=t.choice(runtime_names, "runtime"), flag="--runtime",
                                      none="every registered runtime")
    # None: DEFAULT_PRECISIONS (both None: the main-job pairs)
    precisions: list[str] | None = knob(None, rule=t.choice(all_precisions, "precision"), flag="--precision",
                                        none=" ".join(DEFAULT_PRECISIONS))
    # runs with nothing downloaded
    workloads: list[str] = knob(factory=lambda: ["synthetic"], rule=workload_spec, flag="--workload")
    # padded (mobile-style) and real length
    shapes: list[str] = knob(factory=lambda: list(SHAPES), rule=t.choice(SHAPES, "shape"), flag="--shape")
    # the SQuAD window: padded 384 vs real length (~160) is the 2-3x an app can win
    seq_len: int = knob(384, rule=t.int_range(16, 512), why="the SQuAD window")
    # the same count for every runtime
    threads: int | None = knob(None, rule=t.positive_int, none="all physical cores")
    warmup: int = knob(3, rule=t.nonneg_int)  # untimed runs after the first inference: caches, pools, lazy init
    # first N items of the workload
    limit: int | None = knob(None, rule=t.positive_int, none=f"all; synthetic: {SYNTHETIC_ITEMS}")
    # vocab.txt/folder for presets: real token lengths
    tokenizer: str | None = knob(None, rule=t.tokenizer, none="a generated vocab")
    out: Path = knob(Path("results"), rule=t.output_root)  # records go to out/<run_id>/
    run_id: str | None = knob(None, rule=t.safe_name, none="a UTC timestamp")  # reuse one to add records to a run
    bundle_cache: Path | None = knob(None, rule=t.output_root, none="OUT/bundles")  # exported bundles are cached here
    # run these bundles / plain .onnx .pte files instead of exporting
    bundles: list[Path] = knob(factory=list, rule=t.existing_path, flag="--bundle")
    # plain model files whose outputs do not tell their task
    task: str | None = knob(None, rule=t.choice(task_names, "task"), none="read from the outputs")
    onnx_optimize: bool = False  # export ONNX through ORT's transformer fusion
    overhead_check: bool = False  # also time a bare loop to measure the harness's own overhead
    profile: bool = False  # each record also carries a per-operator profile (a pass after its timed loop)
    timeout_s: float | None = knob(None, rule=t.positive_float, flag="--timeout", none="no limit")  # per worker
    # visit the runs of a comparison this many times in rotated order; records keep the median
    rounds: int = knob(1, rule=t.positive_int)
    strict: bool = False  # a record still noisy after its retries fails the run (exit 1)
    # re-run a worker whose record is noisy up to this many times (None: resolved by __post_init__)
    retries: int | None = knob(None, rule=t.nonneg_int, none=f"{STRICT_RETRIES} with --strict, else 0")
    # ...and at least this many when /proc saw no one else: the pace moved alone
    # (a quiet 2-vCPU VM's GEMM pace moves 20-35% for a second or more: 3 of 12 quiet main-job
    # records); a shared machine stays shared, so those wait for --retries/--strict
    pace_retries: int = knob(1, rule=t.nonneg_int)
    report: bool = True  # render report.md / results.csv / plots at the end
    quiet: bool = False  # no progress bars (tests, CI logs)
    overwrite: bool = False  # add to an existing run folder (else an existing --run-id is refused)
    devices: list[str] = knob(factory=lambda: ["local"], rule=device_url, flag="--device")  # where to run

    def __post_init__(self) -> None:
        if self.retries is None:
            self.retries = STRICT_RETRIES if self.strict else 0


def run_pairs(cfg: BenchConfig) -> list[tuple[str, str]]:
    """The (runtime, precision) pairs `cfg` asks for: the main job when it names neither, else every
    runtime (default: all registered) x every precision (default: DEFAULT_PRECISIONS)."""
    if cfg.runtimes is None and cfg.precisions is None:
        return main_job()
    return [(r, p) for r in cfg.runtimes or runtime_names() for p in cfg.precisions or DEFAULT_PRECISIONS]


def validate_config(cfg: BenchConfig) -> None:
    check_knobs(cfg)  # every field's choices and range: the rules its flags use
    for r, p in run_pairs(cfg):
        get_runtime(r)
        lookup({p: p for p in all_precisions()}, p, "precision")
    if not cfg.bundles:
        for m in cfg.models:
            if m not in PRESETS and not Path(m).expanduser().is_dir():
                raise UsageError(f"model '{m}' is neither a preset ({', '.join(PRESETS)}) nor a folder")

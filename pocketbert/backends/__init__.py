"""The runtime registry: one record per runtime that runs a model file (or the model itself) —
its runner loader, the precisions it runs, availability check (installed? right OS?), the thread
count it really uses, and every fact the benchmark needs about it (plain files it opens, its own
GEMM probe, its main-job precisions). The export side of a backend (how its files are made) is a
separate record under the same name in `export.targets`. No other file lists runtime names.

A runtime module ends with `register(Runtime(...))`. The built-in modules are the files of this
package; more come from `pocketbert.backends` entry points or the POCKETBERT_PLUGINS variable
(module names or .py paths, separated by os.pathsep), so a backend is one file wherever it lives:
a plugin registers a Runtime, an ExportTarget, or both.
Runtime modules import their runtime (torch, onnxruntime, executorch, coremltools) only inside
their functions: the benchmark worker imports this on boards that have numpy and one runtime.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pocketbert.common import UsageError
from pocketbert.registry import Registry, load_plugin, load_plugins  # noqa: F401 - the plugin API

# A runner: dict of input name -> int array (bs, seq) -> list of float32 arrays, one per output.
Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class LoadRequest:
    """What a runner is loaded from: a bundle's model file, or (reference backends) a model spec."""

    input_names: list[str]
    threads: int | None = None  # the same count for every runtime; None: the runtime's default
    model_path: Path | None = None  # bundle backends
    model: str | None = None  # backends that run the model directly (a preset, folder or hub id)
    task: str = "question-answering"
    precision: str = "fp32"


@dataclass(frozen=True)
class PlainFile:
    """A model file without a manifest that this runtime opens (a peer's .onnx, .pte)."""

    suffix: str  # ".onnx"
    what: str  # "an ONNX model" (error messages)
    # (path, seq_len) -> input names/dtypes/shapes, seq_len (None: dynamic), outputs, precision,
    # precision_from, [parameters]: what bench.bundles.read_plain_file needs from the file itself
    read: Callable[[Path, int], dict[str, Any]]
    check: Callable[[Path], None] | None = None  # a structural check before the runtime opens it (UsageError)
    isolated: bool = False  # read in a child process: a corrupt file can abort the runtime's native code


@dataclass(frozen=True)
class GemmProbe:
    """A program run in the runtime's own GEMM kernels: the fp32 / int8 peak of its rows (the
    in-process library's GEMM is the fallback). Its file is built once per bench cache by the
    export target of the same name (ExportTarget.build_probe)."""

    stem: str  # file name stem in the cache ("xnnpack")
    suffix: str  # ".pte"
    rows: int  # input rows per n (rows * n x n)
    depth: int  # chained n x n linears per call
    open: Callable[[Path, int, int | None], Callable[[], Any]]  # (program, n, threads) -> one call
    export_seconds: float = 20  # rough build time (export scheduling)


@dataclass(frozen=True)
class LibraryGemm:
    """The GEMM of the library a runtime runs in, built in-process: the bench's fp32 / int8 peak where
    the runtime has no probe program (or a board lacks it), in the library the model already loaded."""

    library: str  # the module it runs in ("torch"): used when that module is loaded in the process
    make: Callable[[str, int, int | None], Callable[[], Any] | None]  # (kind "fp32"|"int8", n, threads)
    # -> one n x n x n call; None: the library has no such GEMM here


@dataclass(frozen=True)
class Runtime:
    name: str
    precisions: tuple[str, ...]  # what it runs
    load: Callable[[LoadRequest], tuple[Runner, dict[str, Any]]]  # -> (runner, facts: threads_effective...)
    available: Callable[[], tuple[bool, str]]  # can it run models here (installed, right OS), and why not
    target: str | None = ""  # the export target whose bundles it loads ("": its own name; None: it runs
    # the model itself, no bundle)
    dynamic_shapes: bool = True  # can run real-length inputs
    description: str = ""  # one line for --help
    label: str = ""  # the name reports show ("ONNX Runtime"); default: the name
    requires: tuple[str, ...] = ()  # Python modules it needs where it runs (a board is probed for them)
    runtime_modules: tuple[str, ...] = ()  # imported before the bench's load clock: an import is not a model load
    install_hint: str = ""  # how to get it onto a board; "{python}" is that board's interpreter
    only_on: str | None = None  # the one OS it runs on (platform.system(), e.g. "Darwin"), if any
    feeds: tuple[str, ...] = ("int64", "int32")  # id dtypes it can feed a file (a plain file's inputs are checked)
    plain_file: PlainFile | None = None  # a manifest-less file it opens (bench --bundle x.onnx)
    probe: GemmProbe | None = None  # its own GEMM probe program, if any
    gemm: LibraryGemm | None = None  # its library's in-process GEMM (the probe without a program)
    main_job: tuple[str, ...] = ()  # precisions it runs in the bench's main job (no --runtime/--precision)
    rank: int = 50  # its place in the main job and in lists (lower first)
    on_phones: tuple[str, ...] = ()  # the ways it runs on an Android phone (adb devices, `via=`): "app" (an
    # engine of the demo app), "minibench" / "runner" (ExecuTorch's own benchmark app, a pushed runner binary)
    # its own per-operator profiler (bench --profile): (request, runner, calls, work folder) -> a
    # pocketbert.contracts.Profile over one pass of the calls (pocketbert/profile.py builds it); None: none
    profile: Callable[[LoadRequest, Runner, list, Path], Any] | None = None

    @property
    def bundle_target(self) -> str | None:
        """The export target whose bundles it loads; None: it runs the model itself."""
        return self.name if self.target == "" else self.target


REGISTRY: Registry[Runtime] = Registry(__name__, "runtime", plugins=True, order=lambda r: r.rank)
RUNTIMES = REGISTRY.records
register = REGISTRY.register


def all_runtimes() -> dict[str, Runtime]:
    """Every runtime, in rank order."""
    return REGISTRY.all()


def get_runtime(name: str, what: str = "runtime") -> Runtime:
    """The runtime called `name`, or a UsageError listing the valid names."""
    return REGISTRY.get(name, what)


def runtime_names() -> list[str]:
    return REGISTRY.names()


def all_precisions() -> list[str]:
    seen: dict[str, None] = {}
    for r in all_runtimes().values():
        seen.update(dict.fromkeys(r.precisions))
    return list(seen)


def main_job() -> list[tuple[str, str]]:
    """The bench's main-job (runtime, precision) pairs, in rank order."""
    return [(r.name, p) for r in all_runtimes().values() for p in r.main_job]


def plain_suffixes() -> dict[str, Runtime]:
    """Suffix -> the runtime that opens such a plain file."""
    return {r.plain_file.suffix: r for r in all_runtimes().values() if r.plain_file}


def check_precision(record, precision: str, what: str = "backend") -> None:
    if precision not in record.precisions:
        raise UsageError(f"{what} '{record.name}' does not support precision '{precision}': "
                         f"choose one of {', '.join(record.precisions)}")


def installed(*modules: str) -> Callable[[], tuple[bool, str]]:
    """An availability check: every module importable."""
    def check() -> tuple[bool, str]:
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        return (False, f"not installed: {', '.join(missing)}") if missing else (True, "")
    return check


def open_runner(name: str, model_path: str | Path, input_names: list[str], threads: int | None = None) -> Runner:
    """A runner for a bundle's model file in runtime `name` (parity, scripts, tests)."""
    runner, _ = get_runtime(name).load(LoadRequest(list(input_names), threads, Path(model_path)))
    return runner

"""The backend registry: one module per runtime holds everything about it — its export function,
precisions, runner loader, availability check (installed? right OS?), the thread count it really
uses, dynamic-shape support and any backend-specific export check. Export, parity, bench and the
CLIs read this registry; no other file lists backend names.

A backend module ends with `register(Backend(...))`. The built-in modules are the files of this
package; more come from `pocketbert.backends` entry points or the POCKETBERT_PLUGINS variable
(module names or .py paths, separated by os.pathsep), so a backend is one file wherever it lives.
Backend modules import their runtime (torch, onnxruntime, executorch, coremltools) only inside
their functions: the benchmark worker imports this on boards that have numpy and one runtime.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pocketbert.common import UsageError, lookup

# A runner: dict of input name -> int array (bs, seq) -> list of float32 arrays, one per output.
Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class ExportResult:
    """What a backend's export wrote into the bundle."""

    model_file: str  # name of the model file/folder inside the bundle
    input_dtype: str  # dtype the runtime is fed ("int64" / "int32")
    seq_lens: list[int]  # sequence lengths the file accepts (max first for dynamic)
    dynamic_seq: bool  # True: any length <= max(seq_lens); False: exactly one of seq_lens
    dynamic_batch: bool = False
    notes: dict[str, Any] | None = None  # backend-specific facts for the manifest


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
class Backend:
    name: str
    precisions: tuple[str, ...]  # what it exports (bundle backends) or runs (reference backends)
    load: Callable[[LoadRequest], tuple[Runner, dict[str, Any]]]  # -> (runner, facts: threads_effective...)
    available: Callable[[], tuple[bool, str]]  # can it run models here (installed, right OS), and why not
    export: Callable[..., ExportResult] | None = None  # (loaded, precision, cfg, calibration, bundle, log)
    dynamic_shapes: bool = True  # can run real-length inputs
    check_bundle: Callable[[Path, list[str], list[str]], None] | None = None  # (model, inputs, outputs) after export
    tolerances: dict[str, Any] = field(default_factory=dict)  # parity bounds of precisions it adds
    description: str = ""  # one line for --help
    label: str = ""  # the name reports show ("ONNX Runtime"); default: the name
    requires: tuple[str, ...] = ()  # Python modules it needs where it runs (a board is probed for them)
    runtime_modules: tuple[str, ...] = ()  # imported before the bench's load clock: an import is not a model load
    install_hint: str = ""  # how to get it onto a board; "{python}" is that board's interpreter
    only_on: str | None = None  # the one OS it runs on (platform.system(), e.g. "Darwin"), if any
    int8_modes: tuple[str, ...] = ()  # int8 builds it makes ("dynamic", "static"): --int8-mode picks or measures

    @property
    def makes_bundles(self) -> bool:
        return self.export is not None


def int8_mode(cfg) -> str:
    """The int8 build a backend makes from an export config: "dynamic" or "static". The pipeline
    resolves "auto" (build both, measure, keep one: export/int8_choice.py) before a backend sees
    it; configs without the knob (older callers) get dynamic."""
    mode = getattr(cfg, "int8_mode", "dynamic")
    if mode not in ("dynamic", "static"):
        raise ValueError(f"int8 mode {mode!r} reached a backend: the export pipeline resolves "
                         "'auto' into dynamic or static first")
    return mode


BACKENDS: dict[str, Backend] = {}
_loaded = False


def register(backend: Backend) -> Backend:
    """Add a backend (a module's last line); a second one with the same name replaces the first."""
    BACKENDS[backend.name] = backend
    return backend


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}")
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group="pocketbert.backends"):
            ep.load()
    except Exception as e:  # noqa: BLE001 - a broken third-party plugin must say so, not crash --help
        print(f"pocketbert: a pocketbert.backends entry point failed to load: {e}", file=sys.stderr)
    for spec in filter(None, os.environ.get("POCKETBERT_PLUGINS", "").split(os.pathsep)):
        try:
            load_plugin(spec)
        except Exception as e:  # noqa: BLE001 - missing, raising or not Python: one line, --help still works
            why = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            why = why.removeprefix("POCKETBERT_PLUGINS: ")
            print(f"pocketbert: POCKETBERT_PLUGINS: plugin {spec} not loaded ({type(e).__name__}: {why}); "
                  "its backends are unavailable", file=sys.stderr)


def load_plugin(spec: str) -> None:
    """Import a plugin module by name or by .py path (its import registers its backends)."""
    if spec.endswith(".py"):
        path = Path(spec)
        name = f"pocketbert_plugin_{path.stem}"
        if name in sys.modules:
            return
        mod_spec = importlib.util.spec_from_file_location(name, path)
        if mod_spec is None or not path.is_file():
            raise UsageError(f"POCKETBERT_PLUGINS: {spec} not found")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]  # a half-run plugin is not loaded
            raise
    else:
        importlib.import_module(spec)


def all_backends() -> dict[str, Backend]:
    _load_all()
    return BACKENDS


def get_backend(name: str, what: str = "backend") -> Backend:
    """The backend called `name`, or a UsageError listing the valid names (as `what`: the CLIs
    say 'target' for export and 'runtime' for bench)."""
    return lookup(all_backends(), name, what)


def backend_names(bundles_only: bool = False) -> list[str]:
    return [n for n, b in all_backends().items() if b.makes_bundles or not bundles_only]


def all_precisions() -> list[str]:
    seen: dict[str, None] = {}
    for b in all_backends().values():
        seen.update(dict.fromkeys(b.precisions))
    return list(seen)


def check_precision(backend: Backend, precision: str) -> None:
    if precision not in backend.precisions:
        raise UsageError(f"backend '{backend.name}' does not support precision '{precision}': "
                         f"choose one of {', '.join(backend.precisions)}")


def installed(*modules: str) -> Callable[[], tuple[bool, str]]:
    """An availability check: every module importable."""
    def check() -> tuple[bool, str]:
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        return (False, f"not installed: {', '.join(missing)}") if missing else (True, "")
    return check


def open_runner(name: str, model_path: str | Path, input_names: list[str], threads: int | None = None) -> Runner:
    """A runner for a bundle's model file in backend `name`'s runtime (parity, scripts, tests)."""
    runner, _ = get_backend(name).load(LoadRequest(list(input_names), threads, Path(model_path)))
    return runner

"""The export-target registry: one record per format we build — its export function, the
precisions it makes, its int8 builds, its file check and parity tolerances, and the facts the
benchmark's export scheduling needs. The runtime that loads its files is a separate record
(pocketbert.backends) under the same name by default (`runtime=` names another).

A target module ends with `register(ExportTarget(...))`; the built-in ones are the files of this
package, plugins come through pocketbert.registry.load_plugins (a plugin file may register a
runtime, a target, or both). Heavy exporters (torch.export, onnx, coremltools) are imported inside
the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pocketbert.contracts import Delegation
from pocketbert.registry import Registry


@dataclass(frozen=True)
class ExportResult:
    """What a target's export wrote into the bundle."""

    model_file: str  # name of the model file/folder inside the bundle
    input_dtype: str  # dtype the runtime is fed ("int64" / "int32")
    seq_lens: list[int]  # sequence lengths the file accepts (max first for dynamic)
    dynamic_seq: bool  # True: any length <= max(seq_lens); False: exactly one of seq_lens
    dynamic_batch: bool = False
    notes: dict[str, Any] | None = None  # target-specific facts for the manifest
    delegation: Delegation | None = None  # how much of the graph runs in the runtime's fast path


@dataclass(frozen=True)
class ExportTarget:
    name: str
    precisions: tuple[str, ...]  # what it exports
    export: Callable[..., ExportResult]  # (loaded, precision, cfg, calibration, bundle, log)
    runtime: str = ""  # the runtime that loads its files (parity, bench); "": its own name
    check_bundle: Callable[[Path, list[str], list[str]], None] | None = None  # (model, inputs, outputs) after export
    tolerances: dict[str, Any] = field(default_factory=dict)  # parity bounds of precisions it adds
    int8_modes: tuple[str, ...] = ()  # int8 builds it makes ("dynamic", "static"): --int8-mode picks or measures
    int8_guided: bool = False  # --int8-guided can choose per-layer precisions of its int8 build
    export_seconds: dict[str, float] = field(default_factory=dict)  # rough seconds per precision
    # (DistilBERT-base QA, seq 384, 2 vCPUs): the bench starts the longest exports first
    cache_tags: dict[str, str] = field(default_factory=dict)  # ExportConfig knob -> tag in the bench
    # cache's folder name when the knob is on (a knob this target reads that changes its file)
    build_probe: Callable[[str, int, Path], Path] | None = None  # (kind, n, path): the runtime's GemmProbe program
    description: str = ""  # one line for --help
    label: str = ""  # the name logs show; default: the name

    @property
    def runs_on(self) -> str:
        """The runtime that loads this target's files."""
        return self.runtime or self.name


REGISTRY: Registry[ExportTarget] = Registry(__name__, "export target", plugins=True)
TARGETS = REGISTRY.records
register = REGISTRY.register


def all_targets() -> dict[str, ExportTarget]:
    return REGISTRY.all()


def get_target(name: str, what: str = "export target") -> ExportTarget:
    """The target called `name`, or a UsageError listing the valid names."""
    return REGISTRY.get(name, what)


def target_names() -> list[str]:
    return REGISTRY.names()


BUILD_MODES = ("dynamic", "static", "blockwise", "int-attention", "per-tensor")  # int8 builds a target can be asked for (not auto)


def int8_mode(cfg, modes: tuple[str, ...] = BUILD_MODES) -> str:
    """The int8 build a target makes from an export config: one of `modes` (the target's
    int8_modes; default every build mode). The pipeline resolves "auto" (build both, measure, keep
    one: export/int8_choice.py) and refuses a mode the target does not build before a target sees
    it; configs without the knob (older callers) get dynamic."""
    mode = getattr(cfg, "int8_mode", "dynamic")
    if mode not in modes:
        raise ValueError(f"int8 mode {mode!r} reached a backend that builds {', '.join(modes)}: the "
                         "export pipeline resolves 'auto' and refuses other targets' modes first")
    return mode

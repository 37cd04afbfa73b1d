"""The registry of export targets. A target is a plain function that writes the model file of
one (target, precision) into a bundle folder; `@register_target` records what it supports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pocketbert.common import UsageError, lookup


@dataclass(frozen=True)
class TargetResult:
    model_file: str  # name of the model file/folder inside the bundle
    input_dtype: str  # dtype the runtime is fed ("int64" / "int32")
    seq_lens: list[int]  # sequence lengths the file accepts (max first for dynamic)
    dynamic_seq: bool  # True: any length <= max(seq_lens); False: exactly one of seq_lens
    dynamic_batch: bool = False
    notes: dict[str, Any] | None = None  # target-specific facts for the manifest


@dataclass(frozen=True)
class Target:
    name: str
    precisions: tuple[str, ...]
    export: Callable[..., TargetResult]  # (loaded, precision, cfg, calibration, bundle) -> result


TARGETS: dict[str, Target] = {}


def register_target(name: str, precisions: tuple[str, ...]):
    def deco(fn: Callable[..., TargetResult]):
        TARGETS[name] = Target(name, precisions, fn)
        return fn
    return deco


def get_target(name: str) -> Target:
    _import_all()
    return lookup(TARGETS, name, "target")


def check_precision(target: Target, precision: str) -> None:
    if precision not in target.precisions:
        raise UsageError(f"target '{target.name}' does not support precision '{precision}': "
                         f"choose one of {', '.join(target.precisions)}")


def _import_all() -> None:
    # Importing registers; each module imports its backend lazily, inside its export function.
    from export import to_coreml, to_executorch, to_onnx  # noqa: F401


def all_targets() -> dict[str, Target]:
    _import_all()
    return TARGETS

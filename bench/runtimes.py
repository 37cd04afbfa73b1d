"""Runtimes the benchmark can time. A runtime is a plain loader registered with what it needs:

  pytorch     eager PyTorch on the same wrapper every export starts from (fp32; int8 = dynamic
              quantization of nn.Linear), built from the model spec, no bundle
  onnx        ONNX Runtime CPU, from an onnx bundle (fp32, int8)
  executorch  ExecuTorch Python runtime, XNNPACK delegate, from an executorch bundle (fp32, int8)
  coreml      coremltools prediction, from a coreml bundle; only on macOS

Every loader gets the same `threads` and applies it the runtime's own way (see each loader); the
worker also sets OMP/MKL thread variables before any import. Loaders return (runner, facts), facts
holding `threads_effective` (the count the runtime reports using, so a record shows it).
Imports of the runtime libraries happen inside the loaders (the worker imports only what it runs).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pocketbert.common import lookup

Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class Runtime:
    name: str
    precisions: tuple[str, ...]
    bundle_target: str | None  # export target whose bundle it runs; None: runs the model directly
    dynamic_shapes: bool  # can run real-length inputs (given a dynamic_seq bundle)
    available: Callable[[], tuple[bool, str]]  # (can run here, why not)
    load: Callable[..., tuple[Runner, dict[str, Any]]]  # spec -> (runner, facts: threads_effective...)


RUNTIMES: dict[str, Runtime] = {}


def register_runtime(name: str, precisions: tuple[str, ...], bundle_target: str | None,
                     dynamic_shapes: bool, available: Callable[[], tuple[bool, str]]):
    def deco(fn):
        RUNTIMES[name] = Runtime(name, precisions, bundle_target, dynamic_shapes, available, fn)
        return fn
    return deco


def get_runtime(name: str) -> Runtime:
    return lookup(RUNTIMES, name, "runtime")


def _installed(*modules: str) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        return (False, f"not installed: {', '.join(missing)}") if missing else (True, "")
    return check


def _coreml_available() -> tuple[bool, str]:
    ok, why = _installed("coremltools")()
    if not ok:
        return ok, why
    from export.runners import coreml_can_predict

    return coreml_can_predict()


@register_runtime("pytorch", ("fp32", "int8"), None, True, _installed("torch", "transformers"))
def load_pytorch(spec: dict[str, Any]) -> tuple[Runner, dict[str, Any]]:
    import io

    import torch

    from export.wrapper import wrap
    from pocketbert.models import load_model

    if spec["threads"]:
        torch.set_num_threads(int(spec["threads"]))  # intra-op pool (MKL/oneDNN/OpenMP)
    loaded = load_model(spec["model"], spec["task"], tokenizer=None, seed=spec.get("seed", 0))
    model = wrap(loaded).eval()
    if spec["precision"] == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    names = loaded.input_names

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            outs = model(*[torch.from_numpy(feeds[n]) for n in names])
        return [o.numpy() for o in outs]

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)  # what this model weighs on disk (no bundle to measure)
    return run, {"threads_effective": torch.get_num_threads(), "model_bytes": buf.tell()}


def _bundle_runner(target: str):
    def load(spec: dict[str, Any]) -> tuple[Runner, dict[str, Any]]:
        from export.runners import load_runner

        runner = load_runner(target, Path(spec["model_path"]), spec["input_names"], spec["threads"])
        return runner, {"threads_effective": _effective_threads(target, spec["threads"])}
    return load


def _effective_threads(target: str, asked: int | None) -> int | None:
    """The thread count the runtime reports after loading (ExecuTorch's pool can be read back)."""
    if target == "executorch":
        from executorch.extension.pybindings import portable_lib

        return int(portable_lib._threadpool_get_thread_count())
    return asked  # ORT: intra_op_num_threads is what the session was created with


register_runtime("onnx", ("fp32", "int8"), "onnx", True, _installed("onnxruntime"))(_bundle_runner("onnx"))
register_runtime("executorch", ("fp32", "int8"), "executorch", True,
                 _installed("executorch"))(_bundle_runner("executorch"))
register_runtime("coreml", ("fp32", "fp16", "int8", "palette4"), "coreml", False, _coreml_available)(_bundle_runner("coreml"))

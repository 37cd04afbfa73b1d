"""Load an exported model file in its own runtime and run it: the same runners serve the export's
parity check and the benchmark. Each backend is imported lazily inside its loader.

A runner is a callable: dict of input name -> int numpy array (bs, seq)  ->  list of float32
numpy arrays, one per output, in manifest order.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Callable

import numpy as np

from pocketbert.common import UsageError, lookup

Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]

_LOADERS: dict[str, Callable[..., Runner]] = {}


def register_runtime(name: str):
    def deco(fn):
        _LOADERS[name] = fn
        return fn
    return deco


def load_runner(target: str, path: Path, input_names: list[str], threads: int | None = None) -> Runner:
    """A runner for the model file `path` exported for `target` (executorch, onnx, coreml)."""
    return lookup(_LOADERS, target, "runtime")(Path(path), input_names, threads)


class RuntimeUnavailable(UsageError):
    """The runtime can't run here (not installed, or CoreML prediction off macOS)."""


@register_runtime("executorch")
def load_executorch(path: Path, input_names: list[str], threads: int | None) -> Runner:
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    if threads:
        # XNNPACK runs on ExecuTorch's own threadpool, which ignores torch.set_num_threads:
        # left alone it uses every core it detects, so set it to the same count as the others.
        portable_lib._unsafe_reset_threadpool(int(threads))
    program = Runtime.get().load_program(Path(path))
    method = program.load_method("forward")

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n], dtype=np.int64)) for n in input_names]
        return [o.detach().numpy() for o in method.execute(args)]

    return run


@register_runtime("onnx")
def load_onnx(path: Path, input_names: list[str], threads: int | None) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    dtypes = {i.name: (np.int32 if "int32" in i.type else np.int64) for i in session.get_inputs()}

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return session.run(None, {n: np.asarray(feeds[n], dtype=dtypes[n]) for n in input_names})

    return run


def coreml_can_predict() -> tuple[bool, str]:
    """CoreML prediction needs macOS (coremltools converts anywhere but predicts only there)."""
    if platform.system() != "Darwin":
        return False, "not run: requires macOS"
    return True, ""


@register_runtime("coreml")
def load_coreml(path: Path, input_names: list[str], threads: int | None) -> Runner:
    ok, why = coreml_can_predict()
    if not ok:
        raise RuntimeUnavailable(f"CoreML prediction {why.removeprefix('not run: ')}")
    import coremltools as ct

    model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
    output_names = [o.name for o in model.get_spec().description.output]

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = model.predict({n: np.asarray(feeds[n], dtype=np.int32) for n in input_names})
        return [np.asarray(out[n], dtype=np.float32) for n in output_names]

    return run

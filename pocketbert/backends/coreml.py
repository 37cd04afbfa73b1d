"""CoreML: runs a bundle's model.mlpackage on the CPU (prediction needs macOS; coremltools loads
specs anywhere). How the package is made is its export target, export/targets/coreml.py."""

from __future__ import annotations

import platform

import numpy as np

from pocketbert.backends import LoadRequest, Runner, Runtime, installed, register


def coreml_available() -> tuple[bool, str]:
    """CoreML prediction needs macOS (coremltools converts anywhere but predicts only there)."""
    ok, why = installed("coremltools")()
    if not ok:
        return ok, why
    if platform.system() != "Darwin":
        return False, "requires macOS"
    return True, ""


def load_coreml(req: LoadRequest) -> tuple[Runner, dict]:
    import coremltools as ct

    model = ct.models.MLModel(str(req.model_path), compute_units=ct.ComputeUnit.CPU_ONLY)
    output_names = [o.name for o in model.get_spec().description.output]
    names = req.input_names

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = model.predict({n: np.asarray(feeds[n], dtype=np.int32) for n in names})
        return [np.asarray(out[n], dtype=np.float32) for n in output_names]

    return run, {"threads_effective": None}  # CoreML schedules its own threads


register(Runtime(name="coreml", precisions=("fp32", "fp16", "int8", "palette4"), load=load_coreml,
                 available=coreml_available, dynamic_shapes=False, label="CoreML",
                 requires=("numpy", "coremltools"), only_on="Darwin", main_job=("int8",), rank=30,
                 description="CoreML ML Program (model.mlpackage; enumerated lengths; predicts on macOS)"))

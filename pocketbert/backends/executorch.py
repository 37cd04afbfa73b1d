"""ExecuTorch with the XNNPACK delegate: runs a bundle's model.pte (or a plain .pte file) on the
C++ runtime, and probes XNNPACK's own GEMM for the bench's peaks. How the program is made
(torch.export, quantization, lowering) is its export target, export/targets/executorch.py."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import numpy as np

from pocketbert.backends import GemmProbe, LoadRequest, PlainFile, Runner, Runtime, installed, register
from pocketbert.common import UsageError
from pocketbert.inputs import FEATURES
from pocketbert.profile import build_profile, timed_calls, unavailable


# The runtime's C++ extension, by release: 1.5 renamed executorch.extension.pybindings._portable_lib
# to _C (same functions; its portable_lib wrapper imports executorch.exir, the whole exporter).
PYBINDINGS = ("executorch.extension.pybindings._C", "executorch.extension.pybindings._portable_lib")


def pybindings_name() -> str:
    """The extension module this executorch release has, found on disk: importing (or finding) a
    submodule would import executorch's packages, and `pocketbert --help` imports no runtime. The
    first name where executorch is not installed."""
    spec = importlib.util.find_spec("executorch")  # a top-level name: finding it imports nothing
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for name in PYBINDINGS:
            if any(Path(folder, "extension", "pybindings").glob(name.rsplit(".", 1)[1] + ".*")):
                return name
    return PYBINDINGS[0]


def pybindings():
    """The runtime's C++ extension module (torch first: it resolves libtorch's symbols from the
    loaded library)."""
    import torch  # noqa: F401

    return importlib.import_module(pybindings_name())


def open_method(path: Path, threads: int | None):
    """A .pte's forward method on the C++ runtime, XNNPACK's threadpool at `threads`; returns
    (method, the pool's size read back). The runtime itself, not its `portable_lib` /
    `executorch.runtime` wrappers: those import executorch.exir (the whole exporter: dynamo,
    inductor), 6-10 s per process here, which an app never pays. Same program, same kernels."""
    runtime = pybindings()

    import executorch.kernels.quantized  # noqa: F401 - registers embedding_4bit/_byte for 8da4w files

    if threads:
        # XNNPACK runs on ExecuTorch's own threadpool, which ignores torch.set_num_threads:
        # left alone it uses every core it detects, so set it to the same count as the others.
        runtime._unsafe_reset_threadpool(int(threads))
    program = runtime._load_program(str(path), program_verification=runtime.Verification.InternalConsistency)
    return program.load_method("forward"), int(runtime._threadpool_get_thread_count())


def load_executorch(req: LoadRequest) -> tuple[Runner, dict]:
    method, pool = open_method(Path(req.model_path), req.threads)
    names = req.input_names

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [o.detach().numpy() for o in method(_args(feeds, names))]

    return run, {"threads_effective": pool}  # what XNNPACK really runs on


def _args(feeds: dict[str, np.ndarray], names: list[str]) -> list:
    import torch

    return [torch.from_numpy(np.ascontiguousarray(feeds[n], dtype=np.int64)) for n in names]


ETDUMP_TOOL = "ETDump + Inspector"
ET_PROFILE_OVERLAY = "~/.cache/pocketbert/executorch-1.5"  # executorch 1.5.1 beside the pins, for profiles only
NO_ETDUMP = ("executorch {version}'s runtime records no ETDump (built without EXECUTORCH_ENABLE_EVENT_TRACER, as "
             "the PyPI wheels up to 1.4 are; 1.5's record one): for a profile, `pip install --no-deps --target "
             f"{ET_PROFILE_OVERLAY} executorch==1.5.1 py-cpuinfo` and run the bench with PYTHONPATH={ET_PROFILE_OVERLAY} "
             "(same .pte files: docs/stacks.md)")
# Events that are not one operator's own time: the method's and program's spans, each delegate call
# (its operators are events of their own when the delegate profiles inside), and OPERATOR_CALL, the
# envelope 1.5's runtime puts around each kernel call (native_call_<op> inside it is the kernel).
ENVELOPES = ("Method::", "Program::", "OPERATOR_CALL")
OP_INSTANCE = re.compile(r" #\d+$")  # XNNPACK numbers each operator ("... GEMM #3"): one kind, many calls


def executorch_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("executorch")
    except PackageNotFoundError:
        return "(unknown version)"


def etdump_rows(events) -> tuple[list[tuple[str, float]], bool]:
    """(operator, ms over the timed calls) of an ETDump's Inspector events, the first sample of each
    (the warm-up call) dropped; and whether XNNPACK's own per-operator events are there (then its
    DELEGATE_CALL events are left out: their operators would count twice)."""
    timed = [e for e in events if e.perf_data is not None and not e.name.startswith(ENVELOPES)]
    inside = any(e.is_delegated_op for e in timed)
    return [(OP_INSTANCE.sub("", e.name), sum(e.perf_data.raw[1:])) for e in timed
            if not (inside and e.name == "DELEGATE_CALL")], inside


def profile_executorch(req: LoadRequest, runner: Runner, calls: list, work: Path):
    """ExecuTorch's own profile: the program loaded again with an ETDump, one warm-up call and then
    `calls`, the ETDump read with executorch.devtools' Inspector (no ETRecord needed for timings).
    XNNPACK's delegate calls are one event each unless the build profiles inside the delegate
    (level "delegate" then says so). Where the runtime records nothing (the PyPI wheels up to 1.4), it
    says why."""
    open_method(Path(req.model_path), req.threads)  # the runtime's imports and threadpool, as the plain run's
    runtime = pybindings()

    module = runtime._load_for_executorch(str(req.model_path), enable_etdump=True,
                                          program_verification=runtime.Verification.InternalConsistency)
    names = req.input_names
    module.forward(_args(calls[0], names))  # warm-up: its samples are dropped below
    n, wall_ms = timed_calls(lambda feeds: module.forward(_args(feeds, names)), calls)
    path = Path(work) / "model.etdump"
    module.write_etdump_result_to_file(str(path))
    if not path.is_file() or not path.stat().st_size:
        return unavailable(ETDUMP_TOOL, NO_ETDUMP.format(version=executorch_version()))
    from executorch.devtools import Inspector

    rows, inside = etdump_rows([e for block in Inspector(etdump_path=str(path)).event_blocks for e in block.events])
    return build_profile(ETDUMP_TOOL, rows, n, wall_ms, level="operator" if inside else "delegate",
                         note="" if inside else "XNNPACK delegate calls are one event each (no per-op "
                                                "breakdown inside the delegate in this build)")


# ExecuTorch rows are probed with XNNPACK's own kernels, not torch's: measured here, ExecuTorch fp32
# reached 102-106% of torch's fp32 GEMM "peak" (XNNPACK's GEMM is the faster one on this CPU), and
# torch's probe in a process whose model runs on ExecuTorch's threadpool moved 14-36% across quiet runs.

XNNPACK_PROBE_ROWS = 2  # XNNPACK probe input: 2n x n. At 1024 x 1024 its best fp32 call made 110-115
# GFLOP/s here, 2048 x 1024 made 124-136 and DistilBERT's own linears 124-126 (a "peak" below the model)
XNNPACK_PROBE_DEPTH = 4  # linears chained in the probe program, so one call's input/output copies are
# shared by 4 GEMMs: one linear made 115-140 GFLOP/s best, 4 chained 141-158 (same run, 3 rounds), and
# DistilBERT fp32, once XNNPACK took its attention whole, reached 155 (112% of the one-linear "peak")


def xnnpack_gemm(program: Path, n: int, threads: int | None):
    """One call of the probe program (export.targets.executorch.build_probe's .pte)."""
    import torch

    method, _ = open_method(Path(program), threads)
    a = torch.randn(XNNPACK_PROBE_ROWS * n, n)
    return lambda: method([a])


ET_DTYPES = {3: "int32", 4: "int64"}  # ExecuTorch ScalarType codes an id input may have
PTE_IDENTIFIER = re.compile(rb"ET\d\d")  # a .pte is a flatbuffer: file identifier at bytes 4-8


def check_pte_header(path: Path) -> None:
    """A structural check before the runtime reads a file (a corrupt one can abort its C++)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or not PTE_IDENTIFIER.fullmatch(head[4:8]):
        raise UsageError(f"{path}: not an ExecuTorch program (no ETnn flatbuffer identifier in its "
                         "header): a corrupt or truncated file, or another format")


def pte_file_facts(path: Path, seq_len: int) -> dict:
    """Inputs from the ExecuTorch runtime's method meta (positional: the first is input_ids, then
    attention_mask, then token_type_ids, as transformers orders them); its sizes are the upper
    bounds, so one short call tells a dynamic length from a fixed one."""
    from executorch.runtime import Runtime as EtRuntime

    program = EtRuntime.get().load_program(path)
    meta = program.metadata("forward")
    ins = [meta.input_tensor_meta(i) for i in range(meta.num_inputs())]
    if len(ins) > len(FEATURES):
        raise UsageError(f"{path}: forward takes {len(ins)} inputs: expected up to {len(FEATURES)} "
                         f"({', '.join(FEATURES)}, in that order)")
    shapes = [list(t.sizes()) for t in ins]
    longest = shapes[0][1] if shapes and len(shapes[0]) > 1 else seq_len
    name = path.name.lower()
    precision = next((p for key, p in (("8da4w", "8da4w"), ("int8", "int8"), ("qint8", "int8"),
                                       ("fp16", "fp16")) if key in name), None)
    return {"input_names": list(FEATURES[:len(ins)]),
            "dtypes": [ET_DTYPES.get(int(t.dtype()), f"scalar type {int(t.dtype())}") for t in ins],
            "shapes": shapes, "seq_len": None if _pte_is_dynamic(program, ins) else longest,
            "outputs": [{"name": f"output_{i}", "shape": list(meta.output_tensor_meta(i).sizes())}
                        for i in range(meta.num_outputs())],
            "precision": precision or "fp32",
            "precision_from": "file name" if precision else "default (a .pte does not say; fp32 assumed)"}


def _pte_is_dynamic(program, ins) -> bool:
    """Whether the method takes a shorter sequence than its upper bound (one call at length 2)."""
    import torch

    import executorch.kernels.quantized  # noqa: F401 - 8da4w files' embedding kernels

    if not ins or len(ins[0].sizes()) < 2 or ins[0].sizes()[1] <= 2:
        return False
    dtype = {3: torch.int32}.get(int(ins[0].dtype()), torch.long)
    try:
        program.load_method("forward").execute([torch.ones((1, 2), dtype=dtype) for _ in ins])
        return True
    except Exception:  # noqa: BLE001 - the runtime refuses the resize: a fixed-shape program
        return False


register(Runtime(name="executorch", precisions=("fp32", "int8", "8da4w"), load=load_executorch,
                 available=installed("executorch"), dynamic_shapes=True,
                 runtime_modules=("torch", pybindings_name(),
                                  "executorch.kernels.quantized"),
                 label="ExecuTorch XNNPACK", requires=("numpy", "executorch"),
                 install_hint=("ExecuTorch's Python pybindings must be built and installed there (build ExecuTorch "
                               "with EXECUTORCH_BUILD_PYBIND=ON, or pip install executorch where a wheel exists)"),
                 feeds=("int64",), plain_file=PlainFile(".pte", "an ExecuTorch program", pte_file_facts, check=check_pte_header,
                                      isolated=True),
                 probe=GemmProbe("xnnpack", ".pte", XNNPACK_PROBE_ROWS, XNNPACK_PROBE_DEPTH, xnnpack_gemm,
                                 export_seconds=20),  # mostly importing the exporter
                 main_job=("int8",), rank=20, on_phones=("app", "minibench", "runner"),
                 profile=profile_executorch,
                 description="ExecuTorch + XNNPACK (model.pte; dynamic sequence length)"))

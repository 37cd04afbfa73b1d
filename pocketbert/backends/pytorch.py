"""PyTorch eager: the reference every export is compared with, and a benchmark runtime. It runs the
model itself (no bundle): the same `ExportWrapper` every export starts from; int8 = dynamic
quantization of nn.Linear."""

from __future__ import annotations

import numpy as np

from pocketbert.backends import LibraryGemm, LoadRequest, Runner, Runtime, installed, register
from pocketbert.families import families
from pocketbert.models import load_model
from pocketbert.profile import build_profile, timed_calls


def load_pytorch(req: LoadRequest) -> tuple[Runner, dict]:
    import io

    import torch

    from pocketbert.wrapper import wrap

    if req.threads:
        torch.set_num_threads(int(req.threads))  # intra-op pool (MKL/oneDNN/OpenMP)
    loaded = load_model(req.model, req.task, tokenizer=None)
    model = wrap(loaded).eval()
    if req.precision == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    names = loaded.input_names

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            outs = model(*[torch.from_numpy(feeds[n]) for n in names])
        return [o.numpy() for o in outs]

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)  # what this model weighs on disk (no bundle to measure)
    return run, {"threads_effective": torch.get_num_threads(), "model_bytes": buf.tell()}


def profile_pytorch(req: LoadRequest, runner: Runner, calls: list, work):
    """torch.profiler (CPU activities) around one pass of `calls` on the loaded model, after one
    warm-up call: each aten / quantized op's self CPU time (self: a parent op's time is its children's)."""
    from torch.profiler import ProfilerActivity, profile

    runner(calls[0])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        n, wall_ms = timed_calls(runner, calls)
    events = [(e.key, e.self_cpu_time_total / 1e3) for e in prof.key_averages()]
    return build_profile("torch.profiler", events, n, wall_ms)


def torch_gemm(kind: str, n: int, threads: int | None):
    """torch's GEMM for the bench's probe (LibraryGemm): torch.matmul for fp32; for int8 the kernel of
    this runtime's int8 path, a dynamically quantized nn.Linear (fbgemm, activations quantized per call)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    a = torch.randn(n, n)
    if kind == "fp32":
        b, c = torch.randn(n, n), torch.empty(n, n)
        return lambda: torch.matmul(a, b, out=c)
    # The pytorch int8 path: nn.Linear dynamically quantized (fbgemm; activations quantized per call)
    lin = torch.ao.nn.quantized.dynamic.Linear(n, n, dtype=torch.qint8)
    lin.set_weight_bias(torch.quantize_per_tensor(torch.randn(n, n), 0.05, 0, torch.qint8), None)

    def run():
        with torch.inference_mode():
            lin(a)
    return run


register(Runtime(name="pytorch", precisions=("fp32", "int8"), load=load_pytorch,
                 available=installed("torch", "transformers"), target=None, dynamic_shapes=True,
                 main_job=("fp32",), rank=0, profile=profile_pytorch, gemm=LibraryGemm("torch", torch_gemm),
                 label="PyTorch eager", requires=("numpy", "torch", "transformers"),
                 # transformers imports its modeling code on first use (~6 s of the ~9 s "load" measured here)
                 runtime_modules=("torch", "transformers.modeling_utils",
                                  *(f"transformers.models.{m}.modeling_{m}" for m in
                                    (t.replace("-", "_") for t in families()))),
                 install_hint="{python} -m pip install torch transformers numpy",
                 description="PyTorch eager (runs the model directly; the reference)"))

"""ExecuTorch's export target (its runtime: pocketbert/backends/executorch.py), XNNPACK delegate. Export: torch.export -> (int8: PT2E quantize) -> XNNPACK partitioner -> .pte.

fp32: every linear/matmul, attention and LayerNorm delegated to XNNPACK (our attention function and
LayerNorm spelling: `use_xnnpack_attention`, `use_xnnpack_layer_norm`). (fp16 is not offered: XNNPACK's fp16 path gave
non-finite outputs for DistilBERT-size models on x86 here, and an export we can't validate is
not shipped; CoreML is the fp16 target.) int8: XNNPACK quantizer, per-channel int8 linears,
dynamic (activations quantized per call) or static (activation scales calibrated on real-looking
inputs; `--int8-mode`, see export/int8_choice.py), plus the word-embedding table as int8 rows.
8da4w: torchao's int8 dynamic activations with 4-bit
weights in groups of 32 (scale per group) on every linear, and 4-bit grouped embedding tables
(ExecuTorch's quantized embedding_4bit kernel); the scheme of optimum-executorch's `8da4w`.
The sequence axis is dynamic up to `seq_len`, so the
app may feed real lengths (faster) or pad to seq_len.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.coverage import PLUMBING, op_kind
from export.targets import ExportResult, ExportTarget, int8_mode, register
from pocketbert.backends.executorch import XNNPACK_PROBE_DEPTH, XNNPACK_PROBE_ROWS
from pocketbert.contracts import Delegation

MODEL_FILE = "model.pte"
INT8_MODES = ("dynamic", "static")  # its int8 builds (XNNPACK's dynamic int8 is already per token)


def _example_args(loaded, seq_len: int):
    import torch

    ids = torch.full((1, seq_len), 1, dtype=torch.long)  # (1, seq)
    args = [ids, torch.ones_like(ids)]
    if loaded.uses_token_type_ids:
        args.append(torch.zeros_like(ids))
    return tuple(args)


def _dynamic_shapes(loaded, seq_len: int):
    from torch.export import Dim

    seq = Dim("seq", min=2, max=seq_len)
    return {name: {1: seq} for name in loaded.input_names}


def export_executorch(loaded, precision: str, cfg, calibration: list[dict[str, np.ndarray]],
                      bundle: Path, log=print) -> ExportResult:
    import torch
    from executorch.exir import ExecutorchBackendConfig
    from torch.export import export

    import copy

    from pocketbert.wrapper import ExportWrapper  # torch

    model = loaded.model
    if precision == "8da4w":
        model = _quantize_8da4w(model)  # a copy
    elif precision == "int8":
        from export.quant import with_int8_word_embeddings  # torch

        model = with_int8_word_embeddings(model)  # a copy
    else:
        model = copy.deepcopy(model)
    use_xnnpack_attention(model)
    use_xnnpack_layer_norm(model)
    wrapper = ExportWrapper(model, loaded.task, loaded.uses_token_type_ids, loaded.pooling).eval()
    args = _example_args(loaded, cfg.seq_len)
    shapes = _dynamic_shapes(loaded, cfg.seq_len)

    log("torch.export")
    with torch.no_grad():
        program = export(wrapper, args, dynamic_shapes=shapes, strict=False)
        if precision == "int8":
            dynamic = int8_mode(cfg, INT8_MODES) == "dynamic"
            log(f"int8 {int8_mode(cfg)}: calibrating on {1 if dynamic else len(calibration)} input(s)")
            program = quantize_int8(program, [tuple(torch.from_numpy(ex[n]) for n in loaded.input_names)
                                              for ex in calibration], args, shapes, dynamic=dynamic)
        log("lowering to XNNPACK")
        lowered = lower_to_xnnpack(program)
        coverage = delegation(lowered)
        # quant fusion turns torchao's dequantize + embedding into quantized embedding kernels
        et_program = lowered.to_executorch(
            ExecutorchBackendConfig(do_quant_fusion_and_const_prop=precision == "8da4w"))
    (bundle / MODEL_FILE).write_bytes(et_program.buffer)
    return ExportResult(model_file=MODEL_FILE, input_dtype="int64", seq_lens=[cfg.seq_len],
                        dynamic_seq=True, delegation=coverage,
                        notes={"backend": "XNNPACK",
                               **({"int8_mode": int8_mode(cfg)} if precision == "int8" else {}),
                               "quantization": (f"PT2E XNNPACKQuantizer: {int8_mode(cfg)} per-channel "
                                                "int8 linears" + (
                                                    f", int8 activations calibrated (histogram) on "
                                                    f"{len(calibration)} inputs"
                                                    if int8_mode(cfg) == "static" else "")
                                                + "; int8 word embeddings (per-row scale)")
                               if precision == "int8" else
                               f"torchao 8da4w: int8 dynamic activations, int4 weights in groups of "
                               f"{GROUP_4BIT} on linears; int4 grouped embeddings"
                               if precision == "8da4w" else "none"})


def lower_to_xnnpack(program):
    """torch.export program -> edge program with every part XNNPACK takes in its delegate."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                       transform_passes=[xnnpack_friendly_shapes])


def delegation(lowered) -> Delegation:
    """XNNPACK coverage of a lowered edge program: the operators inside its delegates (each delegate's
    original subgraph) vs the call_function nodes left on portable kernels, by kind, and the number of
    delegate partitions (executorch.devtools' get_delegation_info; getitem/sym_size not counted)."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(lowered.exported_program().graph_module)
    inside: dict[str, int] = {}
    outside: dict[str, int] = {}
    for name, counts in info.delegation_by_operator.items():
        if name in PLUMBING:
            continue
        for where, n in ((inside, counts.delegated), (outside, counts.non_delegated)):
            if n:
                where[op_kind(name)] = where.get(op_kind(name), 0) + n
    return Delegation.count("XNNPACK delegate", inside, outside, partitions=info.num_delegated_subgraphs)


ATTENTION = "pocketbert_xnnpack"


def use_xnnpack_attention(model) -> None:
    """Give the model our attention function (eager math, see `xnnpack_attention`), registered
    with transformers' AttentionInterface under ATTENTION.

    Not SDPA: SDPA decomposes into eq/logical_not/any/where ops on (1, heads, seq, seq) tensors
    that XNNPACK does not take, so they ran single-threaded on ExecuTorch's portable kernels
    (+40% fp32, +140% int8 latency at seq 384, measured here). Not transformers' eager function
    either: its 4-D matmuls lower to reshapes with two dynamic dims, which XNNPACK cannot take."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, xnnpack_attention)
    model.set_attn_implementation(ATTENTION)


def xnnpack_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                      **kwargs):
    """Eager attention in the shapes XNNPACK takes whole: (bs*heads, seq, dh) batched matmuls, so
    every reshape has one dynamic dim (seq), and the mask and softmax stay 3-D.

    transformers' eager function does the same math with 4-D matmuls. Lowered with a dynamic seq
    axis, those become reshapes with two dynamic dims (seq, seq) that XNNPACK's static reshape
    cannot take, so each layer's attention was cut into separate delegates with ExecuTorch's
    portable kernels in between. DistilBERT-base QA at seq 384 on a 2-vCPU AVX2 VM, fp32: 51
    XNNPACK partitions -> 15, lowering 52 -> 38 s, p50 ~295 -> ~274 ms; int8 about the same speed
    (21 partitions; its LayerNorms, which XNNPACK does not take, still split the graph).
    query/key/value: (bs, heads, seq, dh); attention_mask: additive (bs, 1, 1, seq) or None.
    Returns (bs, seq, heads, dh) and no attention weights."""
    import torch

    bs, heads, seq, dh = query.shape
    if scaling is None:
        scaling = dh ** -0.5
    if bs != 1:  # a batch needs the mask per head: the 4-D form (correct, just not all delegated)
        scores = torch.matmul(query, key.transpose(2, 3)) * scaling
        if attention_mask is not None:
            scores = scores + attention_mask
        out = torch.matmul(torch.softmax(scores, dim=-1), value)
        return out.transpose(1, 2).contiguous(), None
    # the scale on the queries (seq x dh per head), not on the scores (seq x seq per head): the same
    # product, one pass over 1/6 of the elements at seq 384 (dh 64)
    # keys (bs, heads, seq, dh) are transformers' transposed view of (bs, seq, heads, dh): Kᵀ per head
    # as one permute of that (two permutes in a row are composed by xnnpack_friendly_shapes)
    keys_t = key.transpose(1, 2).permute(0, 2, 3, 1).flatten(0, 1)  # (bs*heads, dh, seq)
    scores = torch.bmm(query.flatten(0, 1) * scaling, keys_t)
    if attention_mask is not None:
        scores = scores + attention_mask.view(1, 1, -1)  # (1, 1, seq) over all heads (a view XNNPACK takes)
    out = torch.bmm(torch.softmax(scores, dim=-1), value.flatten(0, 1))  # (heads, seq, dh)
    return out.view(bs, heads, seq, dh).transpose(1, 2).contiguous(), None


def use_xnnpack_layer_norm(model) -> None:
    """Swap every nn.LayerNorm for `XnnpackLayerNorm` (same parameters, same values), whose ops all
    have XNNPACK kernels: XNNPACK has no LayerNorm, so each one ran on a portable kernel between two
    delegates (a DistilBERT layer's graph cut in three)."""
    import torch

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.LayerNorm) and len(child.normalized_shape) == 1:  # over the last dim
                setattr(parent, name, xnnpack_layer_norm(child))


def xnnpack_layer_norm(ln):
    """LayerNorm over the last dim, spelled in ops XNNPACK's partitioner takes: its mean is
    a global average pool over a 4-D tensor's two inner dims, so an input of any rank, (..., hidden),
    is viewed as (1, rows, hidden, 1) (views, not (un)squeeze: those stay outside), then mean, sub,
    mul, rsqrt, add. Two-pass variance, as torch's kernel: fp32 parity stays exact.

    Rows on the channel axis, not the batch axis: viewed as (rows, 1, hidden, 1), XNNPACK reduced
    each row as a one-channel image, 2.4x slower (one (384, 768) LayerNorm lowered alone, 2 threads,
    AMD EPYC AVX-512: 0.61 -> 0.26 ms p50; 176 rows: 0.33 -> 0.14 ms). In the DistilBERT-base int8
    .pte at seq 384 the means were 5.6 of 49 profiled ms per call."""
    import torch

    class XnnpackLayerNorm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight, self.bias, self.eps = ln.weight, ln.bias, ln.eps

        def forward(self, x):
            x4 = x.reshape(1, -1, x.shape[-1], 1)
            d = x4 - x4.mean(dim=(2, 3), keepdim=True)
            var = (d * d).mean(dim=(2, 3), keepdim=True)
            y = (d * torch.rsqrt(var + self.eps)).view(x.shape)
            y = y if self.weight is None else y * self.weight
            return y if self.bias is None else y + self.bias

    return XnnpackLayerNorm()


def xnnpack_friendly_shapes(graph_module):
    """Edge-dialect pass before partitioning: rewrite what XNNPACK would refuse for shape reasons.

    - a view whose output has one dynamic dim, spelled with symbols (e.g. [1, s, -1, 64]): the
      same view with concrete sizes and -1 for that dim, which XNNPACK's static reshape takes;
    - an expand to the shape its input already has (what a batched matmul adds): dropped;
    - a permute of a permute: one permute (each is a copy in XNNPACK; the keys' transpose for Q.Kᵀ
      follows the heads' transpose), none where they cancel.
    Values are unchanged (fp32 parity is exact)."""
    from executorch.exir.dialects._ops import ops as exir_ops
    from torch.fx.passes.infra.pass_base import PassResult

    def dims(node):
        return [d if isinstance(d, int) else str(d) for d in node.meta["val"].shape]

    permute = exir_ops.edge.aten.permute_copy.default
    changed = False
    for node in list(graph_module.graph.nodes):
        if "val" not in node.meta:
            continue
        if node.target == exir_ops.edge.aten.view_copy.default:
            shape = [d if isinstance(d, int) else -1 for d in dims(node)]
            if shape.count(-1) == 1 and shape != list(node.args[1]):
                node.args = (node.args[0], shape)
                changed = True
        elif node.target == exir_ops.edge.aten.expand_copy.default and dims(node.args[0]) == dims(node):
            node.replace_all_uses_with(node.args[0])
            graph_module.graph.erase_node(node)
            changed = True
        elif node.target == permute and getattr(node.args[0], "target", None) == permute:
            inner = node.args[0]
            rank = len(node.args[1])
            order = [inner.args[1][d] % rank for d in node.args[1]]  # out[i] = in[inner[outer[i]]]
            if order == list(range(rank)):
                node.replace_all_uses_with(inner.args[0])
                graph_module.graph.erase_node(node)
            else:
                node.args = (inner.args[0], order)
            changed = True
    if changed:
        graph_module.graph.eliminate_dead_code()
        graph_module.recompile()
    return PassResult(graph_module, changed)


GROUP_4BIT = 32  # values per 4-bit scale: the usual 8da4w group; 128 is smaller but loses more


def _quantize_8da4w(model):
    """A copy with 4-bit grouped weights: linears as int8-dynamic-activation x int4 weight,
    embeddings as int4 weight-only. Layers whose input width is not a multiple of the group keep
    fp32 (none in BERT-family models)."""
    import copy

    import torch
    from torchao.quantization.granularity import PerGroup
    from torchao.quantization.quant_api import (
        Int8DynamicActivationIntxWeightConfig,
        IntxWeightOnlyConfig,
        quantize_,
    )

    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            # inference ignores padding_idx, and ExecuTorch's quant fusion only matches
            # embedding(weight, indices) without it
            module.padding_idx = None
    group = PerGroup(GROUP_4BIT)
    quantize_(model, IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=group),
              lambda m, _: isinstance(m, torch.nn.Embedding) and m.embedding_dim % GROUP_4BIT == 0)
    quantize_(model, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4,
                                                           weight_granularity=group),
              lambda m, _: isinstance(m, torch.nn.Linear) and m.in_features % GROUP_4BIT == 0)
    return model


def quantize_int8(program, calibration_args, args, shapes=None, dynamic: bool = True):
    """Our ExecuTorch int8 recipe on an exported program (also the bench's XNNPACK int8 GEMM probe):
    PT2E, annotate with the XNNPACK quantizer (per-channel weights; activations dynamic or static),
    calibrate, convert, re-export.

    Dynamic calibrates on the first input only: its activation observers are placeholders
    (activations are quantized per call) and the weight observers see only the weights, so more
    inputs change nothing (a bert-tiny .pte from 1 input is byte-identical to one from 32) and
    cost ~10 s on DistilBERT-base. Static observes every input: those ranges are its scales."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    import torch
    from torch.export import export
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
    if dynamic:
        quantizer = XNNPACKQuantizer().set_global(config)  # its dynamic patterns: linears only
    else:
        # linears only: the global static config also quantizes every add and mul, among them
        # the attention mask add (-1e4 entries on one per-tensor int8 scale) and the residual
        # stream; trained MiniLM-L6 QA: logit SNR 7.1 dB, SQuAD F1 36.8 vs fp32 52.2 (linears
        # only: 8.9 dB, F1 46.4; min/max ranges instead of the histogram: 9.7 dB, F1 45.0)
        quantizer = XNNPACKQuantizer().set_operator_type(torch.ops.aten.linear.default, config)
    prepared = prepare_pt2e(program.module(), quantizer)
    for call_args in calibration_args[:1] if dynamic else calibration_args:
        prepared(*call_args)
    converted = convert_pt2e(prepared)
    return export(converted, args, dynamic_shapes=shapes, strict=False)


def build_probe(kind: str, n: int, path: Path) -> Path:
    """Write the runtime's GEMM probe program (pocketbert.backends.executorch.xnnpack_gemm): a .pte
    holding XNNPACK_PROBE_DEPTH chained n x n linears lowered to XNNPACK, fed XNNPACK_PROBE_ROWS * n
    rows: fp32, or (int8) the int8 path of our ExecuTorch exports (XNNPACK quantizer, dynamic
    per-channel int8; activations quantized per call). Made once per bench cache by the export step
    (needs executorch's exporter, like a bundle)."""
    import os

    import torch
    from torch.export import export

    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(n, n, bias=False) for _ in range(XNNPACK_PROBE_DEPTH)]).eval()
    args = (torch.randn(XNNPACK_PROBE_ROWS * n, n),)
    with torch.no_grad():
        program = export(model, args, strict=False)
        if kind == "int8":  # exactly our exports' int8 recipe
            program = quantize_int8(program, [args], args)
        et = lower_to_xnnpack(program).to_executorch()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # readers never see half a program
    tmp.write_bytes(et.buffer)
    os.replace(tmp, path)
    return path


register(ExportTarget(name="executorch", precisions=("fp32", "int8", "8da4w"), export=export_executorch,
                      int8_modes=INT8_MODES, build_probe=build_probe,
                      export_seconds={"int8": 100, "8da4w": 100, "fp32": 50},
                      description="ExecuTorch + XNNPACK (model.pte; dynamic sequence length)"))

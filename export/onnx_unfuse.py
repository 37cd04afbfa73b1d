"""Two of onnxscript's ORT fusions undone, because ONNX Runtime's CPU kernels for them are slower than
the plain ops they replace (onnxruntime 1.32, measured with its profiler, DistilBERT-base int8 at 384
tokens, 2 threads, AMD EPYC AVX-512):

- SkipLayerNormalization (x + skip [+ bias], then LayerNorm): 10.2 ms for 12 nodes, against 2.6 ms for
  the same work as Sum + LayerNormalization (ONNX's LayerNormalization kernel is vectorized; the
  contrib op is not, here). `Sum`, not `Add`: ORT's session optimizer fuses Add + LayerNormalization
  back into SkipLayerNormalization at load (SkipLayerNormFusion) and matches Add only.
- BiasGelu (x + bias, then erf-GELU): 6.3 ms for 6 nodes, against 2.9 ms for com.microsoft Gelu once
  the bias Add is folded into the int8 GEMM before it (ORT's MatMulIntegerToFloat takes a bias; its
  session does that fold at load). In fp32 ORT fuses Add + Gelu back into BiasGelu: no change there.

Same math (fp32 sums and erf-GELU), so outputs agree to float rounding; the export's parity check runs
on the result as on any file.
"""

from __future__ import annotations

from pathlib import Path

MS = "com.microsoft"


def split_slow_fusions(path: Path, out: Path) -> tuple[Path, dict[str, int]]:
    """SkipLayerNormalization -> [Add bias] + Sum + LayerNormalization, BiasGelu -> Add + Gelu; returns
    the new file and how many of each were split. A SkipLayerNormalization whose mean / inverse-std
    outputs are read is left alone (LayerNormalization gives them in another layout)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    g = model.graph
    read = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    nodes, counts = [], {"skip_layer_normalization": 0, "bias_gelu": 0}
    for n in g.node:
        if n.op_type == "SkipLayerNormalization" and n.domain == MS and not any(o in read for o in n.output[1:3]):
            nodes += _skip_layer_norm(n, helper)
            counts["skip_layer_normalization"] += 1
        elif n.op_type == "BiasGelu" and n.domain == MS:
            pre = f"{n.output[0]}_biased"
            nodes += [helper.make_node("Add", list(n.input), [pre], name=f"{n.name}_bias"),
                      helper.make_node("Gelu", [pre], list(n.output), name=f"{n.name}_gelu", domain=MS)]
            counts["bias_gelu"] += 1
        else:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    onnx.save(model, str(out))
    return out, {k: v for k, v in counts.items() if v}


def _skip_layer_norm(n, helper) -> list:
    """One SkipLayerNormalization(x, skip, gamma, [beta], [bias]) as plain ONNX ops; its optional sum
    output (index 3) keeps its name."""
    ins = list(n.input) + [""] * (5 - len(n.input))
    x, skip, gamma, beta, bias = ins[:5]
    eps = next((helper.get_attribute_value(a) for a in n.attribute if a.name == "epsilon"), 1e-12)
    total = n.output[3] if len(n.output) > 3 and n.output[3] else f"{n.output[0]}_sum"
    nodes = []
    if bias:
        nodes.append(helper.make_node("Add", [x, bias], [f"{total}_biased"], name=f"{n.name}_bias"))
        x = f"{total}_biased"
    nodes.append(helper.make_node("Sum", [x, skip], [total], name=f"{n.name}_sum"))
    nodes.append(helper.make_node("LayerNormalization", [total, gamma] + ([beta] if beta else []),
                                  [n.output[0]], name=f"{n.name}_ln", axis=-1, epsilon=eps))
    return nodes

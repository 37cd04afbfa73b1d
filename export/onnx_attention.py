"""Packed attention for ONNX Runtime: each fused MultiHeadAttention whose query, key and value are
three projections of one input (MatMul by a constant weight, plus a constant bias) becomes one
com.microsoft `Attention` node: one [D, 3D] weight, one [3D] bias, and the padding mask as ORT's
2-D raw key mask (B, T) instead of a float bias expanded to (B, 1, S, T) in every layer.

Why: onnxscript's fusion (export/targets/onnx.py `fuse`) stops at MultiHeadAttention with three
separate projections; ORT's `Attention` is the op its int8 path knows: quantize_dynamic turns it
into `QAttention` (uint8 input quantized once per call, int8 weights, one integer GEMM for Q, K
and V), the graph ORT's own BERT optimizer + quantizer produce for TorchScript exports.
"""

from __future__ import annotations

from pathlib import Path

MS = "com.microsoft"


def pack_attention(path: Path, out: Path, mask_input: str = "attention_mask") -> tuple[Path, int]:
    """Rewrite every packable MultiHeadAttention of `path` into Attention (see the module doc);
    returns the new file and how many were packed (0: `out` is a copy of the graph)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    inputs = {i.name for i in g.input}
    has_mask = mask_input in inputs
    mask_i32 = f"{mask_input}_int32"
    packed, new_inits = 0, []
    for node in list(g.node):
        if node.op_type != "MultiHeadAttention" or node.domain != MS or not _plain_mha(node):
            continue
        proj = [_projection(producer, inits, name) for name in node.input[:3]]
        if any(p is None for p in proj) or len({p[0] for p in proj}) != 1:
            continue
        bias_input = node.input[5] if len(node.input) > 5 else ""
        if bias_input and not (has_mask and _inputs_of(producer, bias_input, inputs) == {mask_input}):
            continue  # an attention bias that is not the padding mask: leave it
        x = proj[0][0]
        weight = np.concatenate([numpy_helper.to_array(inits[w]) for _, w, _ in proj], axis=1)
        hidden = weight.shape[1] // 3
        bias = np.concatenate([numpy_helper.to_array(inits[b]) if b else np.zeros(hidden, weight.dtype)
                               for _, _, b in proj])
        w_name, b_name = f"{node.name or node.output[0]}_qkv_weight", f"{node.name or node.output[0]}_qkv_bias"
        new_inits += [numpy_helper.from_array(weight, w_name), numpy_helper.from_array(bias, b_name)]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        attention = helper.make_node("Attention", [x, w_name, b_name] + ([mask_i32] if bias_input else []),
                                     [node.output[0]], name=f"{node.name or node.output[0]}_packed",
                                     domain=MS, num_heads=attrs["num_heads"],
                                     **({"scale": attrs["scale"]} if "scale" in attrs else {}))
        g.node.insert(list(g.node).index(node), attention)
        g.node.remove(node)
        packed += 1
    if packed and any(mask_i32 in n.input for n in g.node):
        g.node.insert(0, helper.make_node("Cast", [mask_input], [mask_i32], to=onnx.TensorProto.INT32,
                                          name=f"{mask_input}_to_int32"))
    g.initializer.extend(new_inits)
    _drop_dead(g)
    onnx.save(model, str(out))
    return out, packed


def _plain_mha(node) -> bool:
    """Query, key, value given; no packed bias, key padding mask or past state (inputs 3, 4, 6, 7)."""
    ins = list(node.input) + [""] * 8
    return all(ins[:3]) and not any(ins[i] for i in (3, 4, 6, 7)) and len(node.output) == 1


def _projection(producer, inits, name):
    """(x, weight, bias or "") when `name` is MatMul(x, W) [+ b], W and b constants; else None."""
    node = producer.get(name)
    bias = ""
    if node is not None and node.op_type == "Add":
        a, b = node.input
        bias, node = (b, producer.get(a)) if b in inits else (a, producer.get(b)) if a in inits else ("", None)
        if bias and len(inits[bias].dims) != 1:
            return None
    if node is None or node.op_type != "MatMul" or node.input[1] not in inits or len(inits[node.input[1]].dims) != 2:
        return None
    return node.input[0], node.input[1], bias


# What a padding-mask bias is computed with: (1 - mask) * min, unsqueezed, cast, broadcast to a shape
# read off another tensor. A causal or position bias needs other ops (Trilu, Range, Less, ...): left alone.
MASK_OPS = {"Unsqueeze", "Cast", "Sub", "Mul", "Expand", "Where", "Not", "Equal", "Reshape", "Constant",
            "Shape", "Concat", "Gather", "Slice", "Squeeze"}


def _inputs_of(producer, name: str, inputs: set[str]) -> set[str] | None:
    """The graph inputs the values of `name` are computed from (a Shape's input gives only a size:
    not followed); None when an op outside MASK_OPS is on the way."""
    seen, todo = set(), [name]
    while todo:
        v = todo.pop()
        if not v or v in seen:
            continue
        seen.add(v)
        node = producer.get(v)
        if node is not None and node.op_type not in MASK_OPS:
            return None
        todo += list(node.input) if node is not None and node.op_type != "Shape" else []
    return seen & inputs


def _drop_dead(g) -> None:
    """Remove nodes whose outputs nothing reads (repeatedly), then initializers nothing reads."""
    outputs = {o.name for o in g.output}
    while True:
        used = {i for n in g.node for i in n.input} | outputs
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    used = {i for n in g.node for i in n.input}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)

"""The ExecuTorch export's graph: every transformer op inside the XNNPACK delegate, and our
attention function equal to transformers' eager one."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("executorch")

from executorch.exir import to_edge  # noqa: E402

from pocketbert.wrapper import ExportWrapper  # noqa: E402
from export.targets.executorch import (  # noqa: E402
    _dynamic_shapes,
    _example_args,
    lower_to_xnnpack,
    use_xnnpack_attention,
    use_xnnpack_layer_norm,
    xnnpack_attention,
    xnnpack_friendly_shapes,
    xnnpack_layer_norm,
)
from pocketbert.models import load_model  # noqa: E402

# Ops XNNPACK has no kernel for (the embedding gathers) or that only touch the inputs and outputs
# (position ids, the mask's dtype, the QA head's split): left to ExecuTorch's portable kernels.
OUTSIDE_OK = {"embedding", "slice_copy", "_to_dim_order_copy",
              "split_with_sizes_copy", "squeeze_copy", "unsqueeze_copy", "sym_size", "getitem"}


def _exported(model_name: str, seq: int = 32):
    """(the loaded model, its torch.export program) with our attention and LayerNorm, as the export does."""
    loaded = load_model(model_name, "question-answering")
    use_xnnpack_attention(loaded.model)
    use_xnnpack_layer_norm(loaded.model)
    wrapper = ExportWrapper(loaded.model, loaded.task, loaded.uses_token_type_ids).eval()
    with torch.no_grad():
        return loaded, torch.export.export(wrapper, _example_args(loaded, seq),
                                           dynamic_shapes=_dynamic_shapes(loaded, seq), strict=False)


def _ops_outside_the_delegate(model_name: str, seq: int = 32) -> tuple[dict[str, int], int]:
    """The portable operators of the lowered graph by name, and the number of delegate calls."""
    _, program = _exported(model_name, seq)
    with torch.no_grad():
        graph = lower_to_xnnpack(program).exported_program().graph
    ops: dict[str, int] = {}
    delegates = 0
    for node in graph.nodes:
        if node.op == "call_function" and "call_delegate" in str(node.target):
            delegates += 1
        elif node.op == "call_function":
            ops[_op_name(node)] = ops.get(_op_name(node), 0) + 1
    return ops, delegates


@pytest.mark.parametrize("model_name", ["distilbert-tiny", "bert-tiny"])
def test_attention_layer_norms_and_reshapes_stay_inside_xnnpack(model_name):
    """With a dynamic sequence axis, transformers' 4-D attention matmuls lowered to reshapes with two
    dynamic dims, which XNNPACK refuses: every layer was cut into pieces with portable copies
    between them (view_copy, expand_copy, bmm outside the delegate). XNNPACK has no LayerNorm: each
    one ran on a portable kernel and cut the encoder in two more places (bert-tiny: 7 delegates).
    Now the encoder, from the embeddings' LayerNorm to the QA head, is one delegate."""
    ops, delegates = _ops_outside_the_delegate(model_name)
    assert set(ops) <= OUTSIDE_OK, f"left outside XNNPACK: {sorted(set(ops) - OUTSIDE_OK)}"
    assert delegates <= 2, delegates  # the encoder, and at most a piece of the embeddings' plumbing


@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, False)])
def test_our_layer_norm_equals_torchs(affine, bias):
    """Values as torch's LayerNorm (two-pass variance) on activations with a large mean and spread,
    the residual stream's shape, and the same parameters (shared, not copied)."""
    torch.manual_seed(0)
    ln = torch.nn.LayerNorm(48, eps=1e-12, elementwise_affine=affine, bias=bias)
    if affine:
        torch.nn.init.normal_(ln.weight)
        if bias:
            torch.nn.init.normal_(ln.bias)
    ours = xnnpack_layer_norm(ln)
    for shape in ((1, 7, 48), (2, 7, 48), (3, 48)):  # the residual stream, a batch, a head's (bs, hidden)
        x = torch.randn(*shape) * 30 + 5
        torch.testing.assert_close(ours(x), ln(x), rtol=0, atol=1e-5)
    assert ours.weight is ln.weight


@pytest.mark.parametrize("bs", [1, 2])
def test_our_attention_equals_transformers_eager(bs):
    from transformers.models.distilbert.modeling_distilbert import eager_attention_forward

    torch.manual_seed(0)
    q, k, v = (torch.randn(bs, 4, 7, 16) for _ in range(3))
    mask = torch.zeros(bs, 1, 1, 7)
    mask[..., -2:] = -1e4  # two padded keys
    module = torch.nn.Module().eval()
    ours, _ = xnnpack_attention(module, q, k, v, mask)
    theirs, _ = eager_attention_forward(module, q, k, v, mask)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def _op_name(node) -> str:
    parts = getattr(node.target, "__name__", str(node.target)).split(".")
    return parts[1] if len(parts) == 3 else parts[0]  # aten.view_copy.default -> view_copy


def _lowered_edge_nodes(module, args):
    with torch.no_grad():
        program = torch.export.export(module, args, strict=False)
    return [n for n in to_edge(program).exported_program().graph.nodes if n.op == "call_function"]


def test_layer_norm_reduces_rows_as_channels():
    """The LayerNorm's two means see a (1, rows, hidden, 1) tensor: XNNPACK reduces that as one image
    of `rows` channels. Viewed as (rows, 1, hidden, 1) (a batch of one-channel images) the same
    means took 2.4x as long (export/targets/executorch.py `xnnpack_layer_norm`)."""
    ln = torch.nn.LayerNorm(48, eps=1e-12)
    nodes = _lowered_edge_nodes(xnnpack_layer_norm(ln), (torch.randn(1, 7, 48),))
    means = [n for n in nodes if _op_name(n) == "mean"]
    assert len(means) == 2
    assert all(tuple(n.args[0].meta["val"].shape) == (1, 7, 48, 1) for n in means), \
        [tuple(n.args[0].meta["val"].shape) for n in means]


def test_attention_scales_queries_not_scores():
    """The 1/sqrt(dh) scale multiplies the queries (heads x seq x dh), never the scores (heads x seq x
    seq): at seq 384 and dh 64 that is one pass over 1/6 of the elements per layer. The only
    elementwise op on the scores is the padding mask's add (then softmax)."""

    class Attn(torch.nn.Module):
        def forward(self, q, k, v, mask):
            return xnnpack_attention(self, q, k, v, mask)[0]

    seq = 24
    q, k, v = (torch.randn(1, 4, seq, 16) for _ in range(3))
    nodes = _lowered_edge_nodes(Attn(), (q, k, v, torch.zeros(1, 1, 1, seq)))
    on_scores = sorted(_op_name(n) for n in nodes if tuple(n.meta["val"].shape) == (4, seq, seq))
    assert on_scores == ["_softmax", "add", "bmm"], on_scores


def test_one_permute_per_head_split_and_merge():
    """Per layer the activations are permuted four times: queries, keys (straight to Kᵀ), values
    into heads, and the heads back. The keys' transpose for Q.Kᵀ used to be a second copy after
    transformers' head split (5 per layer); `xnnpack_friendly_shapes` composes the two."""
    loaded, program = _exported("distilbert-tiny")
    gm = to_edge(program).exported_program().graph_module
    xnnpack_friendly_shapes(gm)
    permutes = [n for n in gm.graph.nodes if n.op == "call_function" and _op_name(n) == "permute_copy"
                and n.args[0].op != "placeholder"]  # not the weights' transposes
    assert len(permutes) == 4 * loaded.model.config.num_hidden_layers, [n.args[1] for n in permutes]


def test_permutes_that_cancel_disappear():
    """Two permutes that undo each other leave no copy; the values are the input's."""
    class Twice(torch.nn.Module):
        def forward(self, x):
            return x.permute(2, 0, 1).permute(1, 2, 0) * 2

    x = torch.randn(3, 4, 5)
    with torch.no_grad():
        ep = to_edge(torch.export.export(Twice(), (x,), strict=False)).exported_program()
    xnnpack_friendly_shapes(ep.graph_module)
    assert not [n for n in ep.graph.nodes if n.op == "call_function" and _op_name(n) == "permute_copy"]
    torch.testing.assert_close(ep.module()(x), x * 2)

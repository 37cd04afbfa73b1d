"""The ExecuTorch export's graph: every transformer op inside the XNNPACK delegate, and our
attention function equal to transformers' eager one."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("executorch")

from pocketbert.wrapper import ExportWrapper  # noqa: E402
from export.targets.executorch import (  # noqa: E402
    _dynamic_shapes,
    _example_args,
    lower_to_xnnpack,
    use_xnnpack_attention,
    use_xnnpack_layer_norm,
    xnnpack_attention,
    xnnpack_layer_norm,
)
from pocketbert.models import load_model  # noqa: E402

# Ops XNNPACK has no kernel for (the embedding gathers) or that only touch the inputs and outputs
# (position ids, the mask's dtype, the QA head's split): left to ExecuTorch's portable kernels.
OUTSIDE_OK = {"embedding", "slice_copy", "_to_dim_order_copy",
              "split_with_sizes_copy", "squeeze_copy", "unsqueeze_copy", "sym_size", "getitem"}


def _ops_outside_the_delegate(model_name: str, seq: int = 32) -> tuple[dict[str, int], int]:
    """The portable operators of the lowered graph by name, and the number of delegate calls."""
    loaded = load_model(model_name, "question-answering")
    use_xnnpack_attention(loaded.model)
    use_xnnpack_layer_norm(loaded.model)
    wrapper = ExportWrapper(loaded.model, loaded.task, loaded.uses_token_type_ids).eval()
    with torch.no_grad():
        program = torch.export.export(wrapper, _example_args(loaded, seq),
                                      dynamic_shapes=_dynamic_shapes(loaded, seq), strict=False)
        graph = lower_to_xnnpack(program).exported_program().graph
    ops: dict[str, int] = {}
    delegates = 0
    for node in graph.nodes:
        if node.op == "call_function" and "call_delegate" in str(node.target):
            delegates += 1
        elif node.op == "call_function":
            parts = getattr(node.target, "__name__", str(node.target)).split(".")
            name = parts[1] if len(parts) == 3 else parts[0]  # aten.view_copy.default -> view_copy
            ops[name] = ops.get(name, 0) + 1
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

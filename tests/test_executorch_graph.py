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
    xnnpack_attention,
)
from pocketbert.models import load_model  # noqa: E402

# Ops XNNPACK has no kernel for (LayerNorm, the embedding gathers) or that only touch the inputs and
# outputs (position ids, the mask's dtype, the QA head's split): left to ExecuTorch's portable kernels.
OUTSIDE_OK = {"native_layer_norm", "embedding", "slice_copy", "_to_dim_order_copy",
              "split_with_sizes_copy", "squeeze_copy", "unsqueeze_copy", "sym_size", "getitem"}


def _ops_outside_the_delegate(model_name: str, seq: int = 32) -> dict[str, int]:
    loaded = load_model(model_name, "question-answering")
    use_xnnpack_attention(loaded.model)
    wrapper = ExportWrapper(loaded.model, loaded.task, loaded.uses_token_type_ids).eval()
    with torch.no_grad():
        program = torch.export.export(wrapper, _example_args(loaded, seq),
                                      dynamic_shapes=_dynamic_shapes(loaded, seq), strict=False)
        graph = lower_to_xnnpack(program).exported_program().graph
    ops: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_function" and "call_delegate" not in str(node.target):
            parts = getattr(node.target, "__name__", str(node.target)).split(".")
            name = parts[1] if len(parts) == 3 else parts[0]  # aten.view_copy.default -> view_copy
            ops[name] = ops.get(name, 0) + 1
    return ops


def test_attention_and_reshapes_stay_inside_xnnpack():
    """With a dynamic sequence axis, transformers' 4-D attention matmuls lowered to reshapes with two
    dynamic dims, which XNNPACK refuses: every layer was cut into pieces with portable copies
    between them (view_copy, expand_copy, bmm outside the delegate)."""
    ops = _ops_outside_the_delegate("distilbert-tiny")
    assert set(ops) <= OUTSIDE_OK, f"left outside XNNPACK: {sorted(set(ops) - OUTSIDE_OK)}"


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

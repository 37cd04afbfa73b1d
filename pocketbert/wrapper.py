"""The exportable form of a Hugging Face encoder model: plain tensors in, a tuple out.

WORKAROUND (the one place for it): transformers 5 builds the attention mask inside the model
(`create_bidirectional_mask`), with `new_ones` and integer adds that break PT2E calibration and
CoreML conversion. A 4-D float mask is passed through untouched, so this wrapper turns the 2-D
0/1 mask into an additive (bs, 1, 1, seq) mask itself. The bias is -1e4, not finfo.min, so it
stays finite in fp16 (CoreML) and softmax still gives padded keys exactly zero weight.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from pocketbert.families import family_of
from pocketbert.tasks import get_task

MASK_BIAS = -1.0e4


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(bs, seq) 0/1 -> (bs, 1, 1, seq) float: 0 where attended, MASK_BIAS where padded."""
    keep = attention_mask[:, None, None, :].to(dtype)  # (bs, 1, 1, seq)
    return (1.0 - keep) * MASK_BIAS


class ExportWrapper(nn.Module):
    """forward(input_ids, attention_mask[, token_type_ids]) -> tuple of task outputs."""

    def __init__(self, model: nn.Module, task: str, use_token_type_ids: bool, pooling=None):
        super().__init__()
        self.model = model.eval()
        self.task = task
        outputs = get_task(task).outputs  # the task's graph outputs (and in-graph post-processing)
        # feature-extraction: the model's own pooling (a sentence-transformers folder's), else the task's default
        self.outputs = partial(outputs, pooling=pooling) if pooling is not None else outputs
        self.use_token_type_ids = use_token_type_ids
        # the family's mask rule: an additive 4-D mask, or (DeBERTa, ModernBERT: they build their own
        # relative/sliding-window masks from it) the 0/1 mask as given
        self.additive_mask = family_of(model.config.model_type).mask == "additive"
        self.dtype = next(model.parameters()).dtype  # fp16 models get an fp16 mask

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        mask = additive_mask(attention_mask, self.dtype) if self.additive_mask else attention_mask
        kwargs = {"input_ids": input_ids, "attention_mask": mask}
        if self.use_token_type_ids:
            kwargs["token_type_ids"] = token_type_ids
        out = self.model(**kwargs, return_dict=True)
        return self.outputs(out, attention_mask)  # e.g. (bs, seq) x2 for QA, (bs, num_labels)


def wrap(loaded) -> ExportWrapper:
    """Wrap a pocketbert.models.LoadedModel."""
    return ExportWrapper(loaded.model, loaded.task, loaded.uses_token_type_ids, loaded.pooling)

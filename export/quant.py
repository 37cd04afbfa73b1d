"""Weight quantization shared by the targets that need it in PyTorch before export."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class Int8Embedding(nn.Module):
    """An nn.Embedding stored as int8 with one fp32 scale per row (symmetric).

    XNNPACK's quantizer leaves embeddings in fp32, and the word-embedding table is a third of
    DistilBERT (89 MiB). Gathering int8 rows then scaling them is plain ATen (two embedding
    lookups and a multiply), so every runtime runs it without a custom kernel.
    """

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        w = embedding.weight.detach().float()  # (vocab, hidden)
        scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0  # (vocab, 1)
        self.register_buffer("qweight", torch.round(w / scale).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)
        self.num_embeddings, self.embedding_dim = w.shape
        self.padding_idx = embedding.padding_idx

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(ids, self.qweight).to(torch.float32)  # (bs, seq, hidden)
        return rows * F.embedding(ids, self.scale)  # (bs, seq, hidden) * (bs, seq, 1)


def with_int8_word_embeddings(model: nn.Module) -> nn.Module:
    """A copy of a BERT-family model whose word-embedding table is int8."""
    model = copy.deepcopy(model)
    embeddings = model.base_model.embeddings
    embeddings.word_embeddings = Int8Embedding(embeddings.word_embeddings)
    return model


def without_zero_embedding_rows(model: nn.Module, value: float = 1e-4) -> nn.Module:
    """A copy whose all-zero embedding rows hold a tiny constant instead.

    WORKAROUND: coremltools' per-channel int8 quantizer divides each row by its max |w|; an
    all-zero row (the [PAD] row of a freshly initialised model) gives 0/0 = NaN, and a NaN key
    at a padded position poisons every softmax. Padded positions are masked, so the value of
    that row does not change any unpadded output.
    """
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            w = module.weight.data  # (rows, hidden)
            w[(w == 0).all(dim=1)] = value
    return model

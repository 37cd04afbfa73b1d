"""MobileBERT (Sun et al.): a deep, thin BERT with bottlenecks, stacked feed-forward networks and
NoNorm (elementwise affine) in place of LayerNorm; WordPiece vocabulary, segment embeddings, the
`cls` MLM head (its decoder is the tied embeddings plus an extra dense block)."""

from pocketbert.families import Family, register


def mlm_logits(model, hidden):
    return model.cls(hidden)


register(Family(
    name="mobilebert",
    tokenizer_kind="wordpiece",
    tiny=dict(vocab_size=1024, embedding_size=32, hidden_size=64, num_hidden_layers=2,
              num_attention_heads=4, intermediate_size=64, intra_bottleneck_size=32,
              true_hidden_size=32, num_feedforward_networks=2, max_position_embeddings=512),
    mlm_logits=mlm_logits,
    mlm_head_keys=("cls.",),
    token_type_ids=True,
    head_keys=("cls.",),
    limits={  # measured: scripts/export_matrix.py (docs/export-matrix.md)
        "executorch": "torch.export cannot keep its sequence axis dynamic (Constraints violated (seq)), "
                      "which the ExecuTorch export needs",
    },
))

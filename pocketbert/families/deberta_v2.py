"""DeBERTa-v2/v3 (He et al.): disentangled relative-position attention (content<->position), no
absolute positions by default, SentencePiece vocabulary, no segment embeddings unless
type_vocab_size > 0, the `cls` MLM head. It builds its own attention masks from the 0/1 mask."""

from pocketbert.families import Family, TinyTokenizer, register


def mlm_logits(model, hidden):
    return model.cls(hidden)


register(Family(
    name="deberta-v2",
    tokenizer_kind="sentencepiece",
    tiny=dict(vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=128, max_position_embeddings=512, relative_attention=True,
              pos_att_type=["p2c", "c2p"], position_buckets=64, max_relative_positions=-1,
              norm_rel_ebd="layer_norm", share_att_key=True, position_biased_input=False,
              type_vocab_size=0, pad_token_id=0),
    tiny_tokenizer=TinyTokenizer(specials=("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"), cls="[CLS]",
                                 sep="[SEP]", pad="[PAD]", unk="[UNK]", mask="[MASK]"),
    mlm_logits=mlm_logits,
    mlm_head_keys=("cls.", "lm_predictions."),
    token_type_ids=True,  # only when the config has type_vocab_size > 1 (v3 checkpoints: 0)
    position_ids="relative",
    head_keys=("cls.", "lm_predictions."),
    mask="binary",
    limits={  # measured: scripts/export_matrix.py (docs/export-matrix.md)
        "coreml": "coremltools 9.0 cannot convert the int() cast in its relative-position bucket code "
                  "(TypeError in the aten::Int converter)",
        "executorch/fp32": "ExecuTorch's XNNPACK lowering fails on its relative-position attention "
                           "(an output node is also a graph input: a pass-through argument)",
        "executorch/int8": "its PT2E int8 graph fails in calibration: gather() in the relative-position "
                           "attention gets a non-integer index",
    },
    ort_model_type="bert",
))

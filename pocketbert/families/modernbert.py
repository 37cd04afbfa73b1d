"""ModernBERT (Warner et al.): rotary positions, GeGLU feed-forward, pre-norm layers without biases,
alternating global and sliding-window (local) attention, byte-level BPE vocabulary, no segment
embeddings; layers at `layers`, MLM head `head` -> `decoder`. It builds its own global and
sliding-window masks from the 0/1 mask."""

from pocketbert.families import Family, TinyTokenizer, register


def mlm_logits(model, hidden):
    return model.decoder(model.head(hidden))


register(Family(
    name="modernbert",
    tokenizer_kind="bpe",
    tiny=dict(vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=128, max_position_embeddings=512, global_attn_every_n_layers=2,
              local_attention=8, pad_token_id=0, cls_token_id=2, sep_token_id=3, bos_token_id=2,
              eos_token_id=3),
    tiny_tokenizer=TinyTokenizer(specials=("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"), cls="[CLS]",
                                 sep="[SEP]", pad="[PAD]", unk="[UNK]", mask="[MASK]"),
    mlm_logits=mlm_logits,
    mlm_head_keys=("head.", "decoder."),
    position_ids="rotary",
    layers="layers",
    first_layer_kept="its layer 0 has no attention pre-norm, every other layer has one",
    head_keys=("head.", "decoder."),
    mask="binary",
    limits={  # measured: scripts/export_matrix.py (docs/export-matrix.md)
        "coreml": "coremltools 9.0 has no converter for aten::new_ones, which its own global and "
                  "sliding-window mask construction uses",
        "executorch": "the ExecuTorch (XNNPACK) export misses parity (tiny preset, seq 32: max abs diff "
                      "6.8e-3, SNR 47.8 dB against PyTorch; fp32 needs 60 dB)",
    },
))

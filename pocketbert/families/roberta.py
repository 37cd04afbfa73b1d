"""RoBERTa (Liu et al.): BERT's encoder with byte-level BPE, no segment embeddings (one type),
positions counted from padding_idx + 1 (made from input_ids: padded tokens keep padding_idx), and
an `lm_head` MLM head. data2vec-text runs the same code."""

from pocketbert.families import Family, TinyTokenizer, register


def mlm_logits(model, hidden):
    return model.lm_head(hidden)  # dense, gelu, LayerNorm, tied decoder


# shared with XLM-RoBERTa: the same architecture and special tokens (<s> <pad> </s> <unk> at 0-3)
TINY = dict(vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
            max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
TINY_TOKENIZER = TinyTokenizer(specials=("<s>", "<pad>", "</s>", "<unk>", "<mask>"), cls="<s>", sep="</s>",
                               pad="<pad>", unk="<unk>", mask="<mask>", double_sep=True)

# measured: scripts/export_matrix.py (docs/export-matrix.md)
LIMITS = {"executorch/int8": "PT2E int8 quantization breaks the integer position ids it computes from "
                             "input_ids (the runtime fails: tensor dtype mismatch, expected Int, got float)"}

ROBERTA = register(Family(
    name="roberta",
    aliases=("data2vec-text",),
    tokenizer_kind="bpe",
    tiny=TINY,
    tiny_tokenizer=TINY_TOKENIZER,
    mlm_logits=mlm_logits,
    mlm_head_keys=("lm_head.",),
    position_ids="padding-offset",
    ort_model_type="bert",
    limits=LIMITS,
))

"""MPNet (Song et al.): BERT-like encoder with a learned relative-position bias shared by all
layers plus RoBERTa-style absolute positions (from padding_idx + 1), no segment embeddings,
WordPiece vocabulary (with <s>/</s> specials; the tiny preset uses the generated [CLS]/[SEP]
WordPiece vocabulary, pad id 0), and an `lm_head` MLM head."""

from pocketbert.families import Family, register
from pocketbert.families.roberta import mlm_logits

register(Family(
    name="mpnet",
    tokenizer_kind="wordpiece",
    tiny=dict(vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=128, max_position_embeddings=514, pad_token_id=0),
    mlm_logits=mlm_logits,
    mlm_head_keys=("lm_head.",),
    position_ids="padding-offset",
    ort_model_type="bert",
    limits={  # measured: scripts/export_matrix.py (docs/export-matrix.md)
        "executorch/int8": "PT2E int8 quantization breaks the integer position ids it computes from "
                           "input_ids (the embedding lookup gets float indices)",
    },
))

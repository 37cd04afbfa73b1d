"""XLM-RoBERTa (Conneau et al.): RoBERTa's architecture (transformers' code is a copy) with a
SentencePiece vocabulary; CamemBERT is the same (RoBERTa + SentencePiece)."""

from pocketbert.families import Family, register
from pocketbert.families.roberta import LIMITS, TINY, TINY_TOKENIZER, mlm_logits

register(Family(
    name="xlm-roberta",
    aliases=("camembert",),
    tokenizer_kind="sentencepiece",
    tiny=TINY,
    tiny_tokenizer=TINY_TOKENIZER,
    mlm_logits=mlm_logits,
    mlm_head_keys=("lm_head.",),
    position_ids="padding-offset",
    ort_model_type="bert",
    limits=LIMITS,
))

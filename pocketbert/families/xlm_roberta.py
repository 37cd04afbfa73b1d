"""XLM-RoBERTa (Conneau et al.): RoBERTa's architecture (transformers' code is a copy) with a
SentencePiece vocabulary; CamemBERT is the same (RoBERTa + SentencePiece)."""

from pocketbert.families import Family, TinyTokenizer, register
from pocketbert.families.roberta import mlm_logits

register(Family(
    name="xlm-roberta",
    aliases=("camembert",),
    tokenizer_kind="sentencepiece",
    tiny=dict(vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=128, max_position_embeddings=514, type_vocab_size=1,
              pad_token_id=1, bos_token_id=0, eos_token_id=2),
    tiny_tokenizer=TinyTokenizer(specials=("<s>", "<pad>", "</s>", "<unk>", "<mask>"), cls="<s>", sep="</s>",
                                 pad="<pad>", unk="<unk>", mask="<mask>", double_sep=True),
    mlm_logits=mlm_logits,
    mlm_head_keys=("lm_head.",),
    position_ids="padding-offset",
    ort_model_type="bert",
))

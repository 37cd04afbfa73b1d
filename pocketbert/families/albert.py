"""ALBERT (Lan et al.): one set of layer weights shared by every layer (so no layer can be copied
into a student), factorised embeddings, SentencePiece vocabulary, segment embeddings, and a
`predictions` MLM head."""

from pocketbert.families import Family, TinyTokenizer, register


def mlm_logits(model, hidden):
    return model.predictions(hidden)


register(Family(
    name="albert",
    tokenizer_kind="sentencepiece",
    tiny=dict(vocab_size=1024, embedding_size=32, hidden_size=64, num_hidden_layers=2,
              num_attention_heads=4, intermediate_size=128, max_position_embeddings=512,
              pad_token_id=0, bos_token_id=2, eos_token_id=3),
    tiny_tokenizer=TinyTokenizer(specials=("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"), cls="[CLS]",
                                 sep="[SEP]", pad="<pad>", unk="<unk>", mask="[MASK]", lowercase=True),
    mlm_logits=mlm_logits,
    mlm_head_keys=("predictions.",),
    token_type_ids=True,
    layers="encoder.albert_layer_groups",
    head_keys=("predictions.", "sop_classifier."),
    layer_copy="ALBERT shares one set of layer weights across all its layers: there are no "
               "separate layers to copy into a student",
    ort_model_type="bert",
))

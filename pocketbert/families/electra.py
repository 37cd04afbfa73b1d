"""ELECTRA (Clark et al.): BERT's encoder and WordPiece vocabulary; embeddings may be narrower than
the encoder (`embeddings_project`); the MLM head is the generator's (generator_predictions ->
generator_lm_head). Checkpoints of the discriminator carry no MLM head."""

from pocketbert.families import Family, register


def mlm_logits(model, hidden):
    return model.generator_lm_head(model.generator_predictions(hidden))


register(Family(
    name="electra",
    tokenizer_kind="wordpiece",
    tiny=dict(vocab_size=1024, embedding_size=32, hidden_size=64, num_hidden_layers=2,
              num_attention_heads=4, intermediate_size=128, max_position_embeddings=512),
    mlm_logits=mlm_logits,
    mlm_head_keys=("generator_predictions.", "generator_lm_head."),
    token_type_ids=True,
    head_keys=("generator_predictions.", "generator_lm_head.", "discriminator_predictions."),
    ort_model_type="bert",
))

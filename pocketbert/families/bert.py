"""BERT (Devlin et al.): WordPiece, segment embeddings, absolute positions, `cls` MLM head.
Its students are DistilBERTs (the paper): token-type embedding 0 is folded into the student's
position embeddings, so the copied student computes exactly what the teacher's copied layers do."""

from pocketbert.common import UsageError
from pocketbert.families import Family, register


def mlm_logits(model, hidden):
    return model.cls(hidden)  # transform (dense, gelu, LayerNorm) + tied decoder


def distilbert_config(c) -> dict:
    if getattr(c, "position_embedding_type", "absolute") != "absolute":
        raise UsageError("teacher uses relative position embeddings: DistilBERT students need "
                         "absolute ones")
    act = c.hidden_act if isinstance(c.hidden_act, str) else "gelu"
    if act not in ("gelu", "relu"):
        raise UsageError(f"teacher activation '{act}' is not available in DistilBERT (gelu, relu)")
    return dict(dim=c.hidden_size, n_heads=c.num_attention_heads, hidden_dim=c.intermediate_size,
                activation=act)


_LAYER_NAMES = {"attention.self.query": "attention.q_lin", "attention.self.key": "attention.k_lin",
                "attention.self.value": "attention.v_lin", "attention.output.dense": "attention.out_lin",
                "attention.output.LayerNorm": "sa_layer_norm", "intermediate.dense": "ffn.lin1",
                "output.dense": "ffn.lin2", "output.LayerNorm": "output_layer_norm"}


def distilbert_weights(sd: dict, layers: list[int], head: bool) -> dict:
    """BERT weights (BertModel or BertForMaskedLM names) -> a DistilBERT student's, chosen layers."""
    pre_t, pre_s = ("bert.", "distilbert.") if head else ("", "")
    e = pre_t + "embeddings."
    out = {pre_s + "embeddings.word_embeddings.weight": sd[e + "word_embeddings.weight"]}
    pos = sd[e + "position_embeddings.weight"]  # (max_pos, dim)
    tte = sd.get(e + "token_type_embeddings.weight")
    out[pre_s + "embeddings.position_embeddings.weight"] = pos + tte[0] if tte is not None else pos
    out[pre_s + "embeddings.LayerNorm.weight"] = sd[e + "LayerNorm.weight"]
    out[pre_s + "embeddings.LayerNorm.bias"] = sd[e + "LayerNorm.bias"]
    for j, i in enumerate(layers):
        for src, dst in _LAYER_NAMES.items():
            for p in ("weight", "bias"):
                out[f"{pre_s}transformer.layer.{j}.{dst}.{p}"] = sd[f"{pre_t}encoder.layer.{i}.{src}.{p}"]
    if head:
        out["vocab_transform.weight"] = sd["cls.predictions.transform.dense.weight"]
        out["vocab_transform.bias"] = sd["cls.predictions.transform.dense.bias"]
        out["vocab_layer_norm.weight"] = sd["cls.predictions.transform.LayerNorm.weight"]
        out["vocab_layer_norm.bias"] = sd["cls.predictions.transform.LayerNorm.bias"]
        out["vocab_projector.bias"] = sd.get("cls.predictions.bias", sd.get("cls.predictions.decoder.bias"))
    return out


register(Family(
    name="bert",
    tokenizer_kind="wordpiece",
    tiny=dict(vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=128, max_position_embeddings=512),
    mlm_logits=mlm_logits,
    mlm_head_keys=("cls.predictions.",),
    token_type_ids=True,
    head_keys=("cls.", "bert.pooler."),
    ort_model_type="bert",
    distilbert_config=distilbert_config,
    distilbert_weights=distilbert_weights,
))

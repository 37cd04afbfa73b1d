"""DistilBERT (Sanh et al.): BERT without segment embeddings or pooler; layers under
`transformer.layer`; its MLM head is vocab_transform -> activation -> vocab_layer_norm -> projector.
Its students are DistilBERTs with a subset of its layers."""

from pocketbert.families import Family, register

_HEAD = ("vocab_transform.", "vocab_layer_norm.", "vocab_projector.")


def mlm_logits(model, hidden):
    x = model.vocab_transform(hidden)  # (n, dim)
    x = model.activation(x)
    x = model.vocab_layer_norm(x)
    return model.vocab_projector(x)  # (n, vocab)


def distilbert_config(c) -> dict:
    return dict(dim=c.dim, n_heads=c.n_heads, hidden_dim=c.hidden_dim, activation=c.activation)


def distilbert_weights(sd: dict, layers: list[int], head: bool) -> dict:
    """The embeddings, the chosen layers renumbered and the MLM head (its tied projector aside)."""
    pre = "distilbert." if head else ""
    out = {}
    for k, v in sd.items():
        if not k.startswith(pre):
            if head and k.startswith(_HEAD) and k != "vocab_projector.weight":
                out[k] = v
            continue
        k2 = k[len(pre):]
        if k2.startswith("transformer.layer."):
            i, rest = k2[len("transformer.layer."):].split(".", 1)
            if int(i) in layers:
                out[f"{pre}transformer.layer.{layers.index(int(i))}.{rest}"] = v
        elif k2.startswith("embeddings."):
            out[pre + k2] = v
    return out


register(Family(
    name="distilbert",
    tokenizer_kind="wordpiece",
    tiny=dict(vocab_size=1024, dim=64, n_layers=2, n_heads=4, hidden_dim=128,
              max_position_embeddings=512),
    mlm_logits=mlm_logits,
    mlm_head_keys=_HEAD,
    layers="transformer.layer",
    head_keys=("pre_classifier.",) + _HEAD,
    ort_model_type="bert",  # the optimizer's BERT fusions match DistilBERT's attention too
    distilbert_config=distilbert_config,
    distilbert_weights=distilbert_weights,
))

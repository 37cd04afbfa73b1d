"""Teacher loading and student construction.

The student is a DistilBERT (no token-type embeddings, no pooler) initialised from the teacher:
word and position embeddings, embedding LayerNorm, the MLM head and a subset of the layers
(`--student-layers`, default one out of two). BERT adds token-type embedding 0 to every token; we
fold it into the student's position embeddings so the copied student computes exactly what the
teacher's copied layers compute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocketbert.common import UsageError
from pocketbert.models import BERT_FAMILY, PRESETS, build_preset, load_tokenizer

# The reference layer map for a 12-layer BERT in the DistilBERT release (keeps first and last).
REFERENCE_LAYER_MAPS = {12: [0, 2, 4, 7, 9, 11]}

_MLM_HEAD_KEYS = ("cls.predictions.", "vocab_transform.", "vocab_projector.")


@dataclass
class Teacher:
    """A frozen teacher: `model` is a *ForMaskedLM when `has_mlm_head`, else the bare encoder."""

    model: Any
    tokenizer: Any
    model_type: str  # "bert" | "distilbert"
    has_mlm_head: bool
    source: str

    @property
    def encoder(self):
        """The bare encoder (BertModel / DistilBertModel) whatever the head."""
        if not self.has_mlm_head:
            return self.model
        return self.model.bert if self.model_type == "bert" else self.model.distilbert

    @property
    def num_layers(self) -> int:
        c = self.model.config
        return c.num_hidden_layers if self.model_type == "bert" else c.n_layers


def parse_layers(text: str | None, teacher_layers: int) -> list[int]:
    """`--student-layers`: "0,2,4", "every-other" (0,2,4,...), "reference" (the paper's 12-layer
    map 0,2,4,7,9,11) or None (the reference map when there is one, else every other layer)."""
    if text in (None, ""):
        return default_layer_map(teacher_layers)
    if text == "every-other":
        return list(range(0, teacher_layers, 2))
    if text == "reference":
        if teacher_layers not in REFERENCE_LAYER_MAPS:
            raise UsageError(f"no reference layer map for a {teacher_layers}-layer teacher: pass "
                             "--student-layers as a list like 0,2,4")
        return list(REFERENCE_LAYER_MAPS[teacher_layers])
    try:
        layers = [int(x) for x in str(text).split(",") if x.strip() != ""]
    except ValueError:
        raise UsageError(f"--student-layers must be comma-separated integers, got '{text}'") from None
    if not layers:
        raise UsageError("--student-layers is empty: pass at least one teacher layer index")
    if len(layers) > teacher_layers:
        raise UsageError(f"student with {len(layers)} layers is bigger than its "
                         f"{teacher_layers}-layer teacher: pick at most {teacher_layers} layers")
    bad = [i for i in layers if not 0 <= i < teacher_layers]
    if bad:
        raise UsageError(f"--student-layers {bad} out of range: the teacher has layers "
                         f"0..{teacher_layers - 1}")
    if sorted(set(layers)) != layers:
        raise UsageError(f"--student-layers must be strictly increasing, got {layers}")
    return layers


def default_layer_map(teacher_layers: int) -> list[int]:
    """One layer out of two: the paper's 12->6 reference map, else 0,2,4,..."""
    if teacher_layers in REFERENCE_LAYER_MAPS:
        return list(REFERENCE_LAYER_MAPS[teacher_layers])
    return list(range(0, teacher_layers, 2))


def _weight_keys(folder: Path) -> list[str]:
    st = sorted(folder.glob("model*.safetensors"))
    if st:
        from safetensors import safe_open

        keys: list[str] = []
        for f in st:
            with safe_open(str(f), "pt") as h:
                keys += list(h.keys())
        return keys
    if (folder / "pytorch_model.bin").exists():
        import torch

        return list(torch.load(folder / "pytorch_model.bin", map_location="cpu",
                               weights_only=True).keys())
    raise UsageError(f"{folder} has no weights (model.safetensors or pytorch_model.bin)")


def load_teacher(spec: str, tokenizer: str | None = None, seed: int = 0) -> Teacher:
    """A preset, a local HF folder or a hub id; with its MLM head when its weights have one.

    A folder whose weights carry no MLM head (a sentence-embedding or QA model) is loaded as a bare
    encoder, never with a silently random head.
    """
    import torch

    if spec in PRESETS:
        model = build_preset(spec, "fill-mask", seed=seed)
        tok = load_tokenizer(tokenizer, vocab_size=min(model.config.vocab_size, 1024))
        return _frozen(Teacher(model, tok, model.config.model_type, True, f"preset:{spec}"))
    path = Path(spec).expanduser()
    if not path.is_dir():
        if path.exists() or spec.startswith((".", "/", "~")) or spec.endswith("/") or spec.count("/") > 1:
            raise UsageError(f"teacher folder {spec} not found (or not a folder): pass a Hugging "
                             f"Face folder, a hub id or a preset: {', '.join(PRESETS)}")
        return _load_hub_teacher(spec, tokenizer)
    if not (path / "config.json").exists():
        raise UsageError(f"{path} has no config.json: it is not a Hugging Face model folder")
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}/config.json ({e})") from None
    if model_type not in BERT_FAMILY:
        raise UsageError(f"teacher {path} is a '{model_type}' model, not BERT-family: the "
                         f"distiller supports {', '.join(BERT_FAMILY)}")
    has_head = any(k.startswith(_MLM_HEAD_KEYS) or f".{_MLM_HEAD_KEYS[0]}" in k
                   for k in _weight_keys(path))
    from transformers import AutoModel, AutoModelForMaskedLM

    cls = AutoModelForMaskedLM if has_head else AutoModel
    try:
        model = cls.from_pretrained(path, dtype=torch.float32)
    except Exception as e:  # noqa: BLE001 - corrupt weights surface as many types
        raise UsageError(f"cannot load the teacher weights in {path} ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200]})") from None
    tok = load_tokenizer(tokenizer or path)
    return _frozen(Teacher(model, tok, model_type, has_head, str(path)))


def _load_hub_teacher(spec: str, tokenizer: str | None) -> Teacher:
    from pocketbert.models import load_model

    loaded = load_model(spec, "fill-mask", tokenizer=tokenizer)  # UsageError when offline
    return _frozen(Teacher(loaded.model, loaded.tokenizer, loaded.model_type, True, loaded.source))


def _frozen(t: Teacher) -> Teacher:
    t.model.eval()
    for p in t.model.parameters():
        p.requires_grad_(False)
    return t


def student_config(teacher: Teacher, layers: list[int], dropout: float = 0.1):
    """DistilBERT config with the teacher's width and len(layers) layers."""
    from transformers import DistilBertConfig

    c = teacher.model.config
    if teacher.model_type == "distilbert":
        kw = dict(dim=c.dim, n_heads=c.n_heads, hidden_dim=c.hidden_dim, activation=c.activation)
    else:
        if getattr(c, "position_embedding_type", "absolute") != "absolute":
            raise UsageError("teacher uses relative position embeddings: DistilBERT students need "
                             "absolute ones")
        act = c.hidden_act if isinstance(c.hidden_act, str) else "gelu"
        if act not in ("gelu", "relu"):
            raise UsageError(f"teacher activation '{act}' is not available in DistilBERT "
                             "(gelu, relu)")
        kw = dict(dim=c.hidden_size, n_heads=c.num_attention_heads,
                  hidden_dim=c.intermediate_size, activation=act)
    return DistilBertConfig(vocab_size=c.vocab_size, max_position_embeddings=c.max_position_embeddings,
                            n_layers=len(layers), dropout=dropout, attention_dropout=dropout,
                            pad_token_id=getattr(c, "pad_token_id", 0) or 0, **kw)


def build_student(teacher: Teacher, layers: list[int], dropout: float = 0.1, copy: bool = True,
                  seed: int = 0):
    """A DistilBERT student (with an MLM head iff the teacher has one), weights copied from the
    teacher's embeddings, the chosen `layers` and the MLM head (`copy=False`: random init)."""
    import torch
    from transformers import DistilBertForMaskedLM, DistilBertModel

    layers = parse_layers(",".join(map(str, layers)), teacher.num_layers)
    config = student_config(teacher, layers, dropout)
    torch.manual_seed(seed)
    student = (DistilBertForMaskedLM if teacher.has_mlm_head else DistilBertModel)(config)
    if copy:
        state = map_teacher_weights(teacher, layers)
        missing, unexpected = student.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("vocab_projector.weight")]  # tied
        if missing or unexpected:
            raise RuntimeError(f"weight mapping incomplete: missing {missing}, unexpected {unexpected}")
        if teacher.has_mlm_head:
            student.tie_weights()
    return student


def map_teacher_weights(teacher: Teacher, layers: list[int]) -> dict[str, Any]:
    """Teacher state dict -> student (DistilBERT) names, for the chosen layers."""
    sd = {k: v.detach().clone() for k, v in teacher.model.state_dict().items()}
    head = teacher.has_mlm_head
    prefix_s = "distilbert." if head else ""
    out: dict[str, Any] = {}
    if teacher.model_type == "distilbert":
        pre_t = "distilbert." if head else ""
        for k, v in sd.items():
            if not k.startswith(pre_t):
                if head and k.startswith(("vocab_transform", "vocab_layer_norm", "vocab_projector")):
                    if k != "vocab_projector.weight":
                        out[k] = v
                continue
            k2 = k[len(pre_t):]
            if k2.startswith("transformer.layer."):
                i, rest = k2[len("transformer.layer."):].split(".", 1)
                if int(i) in layers:
                    out[f"{prefix_s}transformer.layer.{layers.index(int(i))}.{rest}"] = v
            elif k2.startswith("embeddings."):
                out[prefix_s + k2] = v
        return out

    pre_t = "bert." if head else ""
    e = pre_t + "embeddings."
    out[prefix_s + "embeddings.word_embeddings.weight"] = sd[e + "word_embeddings.weight"]
    pos = sd[e + "position_embeddings.weight"]  # (max_pos, dim)
    tte = sd.get(e + "token_type_embeddings.weight")
    out[prefix_s + "embeddings.position_embeddings.weight"] = pos + tte[0] if tte is not None else pos
    out[prefix_s + "embeddings.LayerNorm.weight"] = sd[e + "LayerNorm.weight"]
    out[prefix_s + "embeddings.LayerNorm.bias"] = sd[e + "LayerNorm.bias"]
    names = {"attention.self.query": "attention.q_lin", "attention.self.key": "attention.k_lin",
             "attention.self.value": "attention.v_lin", "attention.output.dense": "attention.out_lin",
             "attention.output.LayerNorm": "sa_layer_norm", "intermediate.dense": "ffn.lin1",
             "output.dense": "ffn.lin2", "output.LayerNorm": "output_layer_norm"}
    for j, i in enumerate(layers):
        for src, dst in names.items():
            for p in ("weight", "bias"):
                out[f"{prefix_s}transformer.layer.{j}.{dst}.{p}"] = \
                    sd[f"{pre_t}encoder.layer.{i}.{src}.{p}"]
    if head:
        out["vocab_transform.weight"] = sd["cls.predictions.transform.dense.weight"]
        out["vocab_transform.bias"] = sd["cls.predictions.transform.dense.bias"]
        out["vocab_layer_norm.weight"] = sd["cls.predictions.transform.LayerNorm.weight"]
        out["vocab_layer_norm.bias"] = sd["cls.predictions.transform.LayerNorm.bias"]
        bias = sd.get("cls.predictions.bias", sd.get("cls.predictions.decoder.bias"))
        out["vocab_projector.bias"] = bias
    return out


def student_encoder(student):
    """The bare DistilBertModel inside a student (with or without MLM head)."""
    return getattr(student, "distilbert", student)


def mlm_head_logits(model, model_type: str, hidden):
    """Apply a *ForMaskedLM head to selected hidden states. (n, dim) -> (n, vocab)"""
    if model_type == "bert":
        return model.cls(hidden)
    x = model.vocab_transform(hidden)  # (n, dim)
    x = model.activation(x)
    x = model.vocab_layer_norm(x)
    return model.vocab_projector(x)  # (n, vocab)

"""Teacher loading and student construction.

The student is initialised from the teacher: embeddings, the MLM head and a subset of the layers
(`--student-layers`, default one out of two). A BERT or DistilBERT teacher gets a DistilBERT student
(the paper; its family file maps the weights), every other family a student of its own
architecture with fewer layers (same config, `num_hidden_layers` = the layers copied). A family
whose layers cannot be copied (ALBERT shares one layer) is refused in one line before any work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocketbert.common import UsageError
from pocketbert.families import Family, family_of
from pocketbert.models import PRESETS, build_preset, load_tokenizer, preset_tokenizer

# The reference layer map for a 12-layer BERT in the DistilBERT release (keeps first and last).
REFERENCE_LAYER_MAPS = {12: [0, 2, 4, 7, 9, 11]}


@dataclass
class Teacher:
    """A frozen teacher: `model` is a *ForMaskedLM when `has_mlm_head`, else the bare encoder."""

    model: Any
    tokenizer: Any
    model_type: str  # a pocketbert.families name
    has_mlm_head: bool
    source: str

    @property
    def family(self) -> Family:
        return family_of(self.model_type)

    @property
    def encoder(self):
        """The bare encoder (BertModel, RobertaModel, ...) whatever the head."""
        return self.model.base_model

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)


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
        family_of(PRESETS[spec]["model_type"]).check_layer_copy()
        model = build_preset(spec, "fill-mask", seed=seed)
        tok = preset_tokenizer(spec, tokenizer)
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
    family = family_of(model_type, f"teacher {path}")
    family.check_layer_copy()
    has_head = any(k.startswith(family.mlm_head_keys) for k in _weight_keys(path))
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
    loaded.family.check_layer_copy()
    return _frozen(Teacher(loaded.model, loaded.tokenizer, loaded.model_type, True, loaded.source))


def _frozen(t: Teacher) -> Teacher:
    t.model.eval()
    for p in t.model.parameters():
        p.requires_grad_(False)
    return t


def student_config(teacher: Teacher, layers: list[int], dropout: float = 0.1):
    """The student's config: a DistilBERT of the teacher's width (bert, distilbert teachers) or the
    teacher's own config, with len(layers) layers."""
    import copy

    c = teacher.model.config
    family = teacher.family
    if family.distilbert_config is None:
        config = copy.deepcopy(c)
        config.num_hidden_layers = len(layers)
        if isinstance(getattr(c, "layer_types", None), list):  # per-layer kinds (ModernBERT's global/local)
            config.layer_types = [c.layer_types[i] for i in layers]
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
            if isinstance(getattr(config, name, None), float):
                setattr(config, name, dropout)
        return config
    from transformers import DistilBertConfig

    return DistilBertConfig(vocab_size=c.vocab_size, max_position_embeddings=c.max_position_embeddings,
                            n_layers=len(layers), dropout=dropout, attention_dropout=dropout,
                            pad_token_id=getattr(c, "pad_token_id", 0) or 0, **family.distilbert_config(c))


def build_student(teacher: Teacher, layers: list[int], dropout: float = 0.1, copy: bool = True,
                  seed: int = 0):
    """A student (with an MLM head iff the teacher has one), weights copied from the teacher's
    embeddings, the chosen `layers` and the MLM head (`copy=False`: random init)."""
    import torch
    from transformers import AutoModel, AutoModelForMaskedLM

    layers = parse_layers(",".join(map(str, layers)), teacher.num_layers)
    teacher.family.check_layer_copy(layers)
    config = student_config(teacher, layers, dropout)
    torch.manual_seed(seed)
    student = (AutoModelForMaskedLM if teacher.has_mlm_head else AutoModel).from_config(config)
    if copy:
        state = map_teacher_weights(teacher, layers)
        missing, unexpected = student.load_state_dict(state, strict=False)
        tied = _tied_names(student)
        missing = [k for k in missing if k not in tied]
        if missing or unexpected:
            raise RuntimeError(f"weight mapping incomplete: missing {missing}, unexpected {unexpected}")
        if teacher.has_mlm_head:
            student.tie_weights()
    return student


def _tied_names(model) -> set[str]:
    """Names of parameters that share storage with the word embeddings (the MLM decoder)."""
    emb = model.get_input_embeddings().weight
    return {n for n, p in model.named_parameters(remove_duplicate=False) if p is emb} - \
        {n for n, p in model.named_parameters() if p is emb}


def map_teacher_weights(teacher: Teacher, layers: list[int]) -> dict[str, Any]:
    """Teacher state dict -> the student's names, for the chosen layers."""
    sd = {k: v.detach().clone() for k, v in teacher.model.state_dict().items()}
    family = teacher.family
    if family.distilbert_weights is not None:
        return family.distilbert_weights(sd, layers, teacher.has_mlm_head)
    return copy_layers(sd, layers, _layer_prefix(teacher))


def _layer_prefix(teacher: Teacher) -> str:
    """The state-dict prefix of the layer list, e.g. "roberta.encoder.layer." ("encoder.layer." bare)."""
    base = teacher.model.base_model
    owner = "" if base is teacher.model else teacher.model.base_model_prefix + "."
    return f"{owner}{teacher.family.layers}."


def copy_layers(sd: dict[str, Any], layers: list[int], prefix: str) -> dict[str, Any]:
    """Every weight kept, except the layers under `prefix`: the chosen ones renumbered 0.., the rest dropped."""
    out = {}
    for k, v in sd.items():
        if not k.startswith(prefix):
            out[k] = v
            continue
        i, rest = k[len(prefix):].split(".", 1)
        if int(i) in layers:
            out[f"{prefix}{layers.index(int(i))}.{rest}"] = v
    return out


def student_encoder(student):
    """The bare encoder inside a student (with or without MLM head)."""
    return student.base_model


def mlm_head_logits(model, model_type: str, hidden):
    """Apply a *ForMaskedLM head (its family's) to selected hidden states. (n, dim) -> (n, vocab)"""
    return family_of(model_type).mlm_logits(model, hidden)

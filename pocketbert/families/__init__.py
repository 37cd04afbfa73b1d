"""The model-family registry: one file per architecture (`model_type`), holding every fact the
loaders, exporters and the distiller need about it, so no command branches on a model type.

A family module ends with `register(Family(...))`. Aliases are the model types transformers runs
with the same code (camembert is a RoBERTa): they resolve to the same record. `family_of` is the
one lookup; an unknown model type fails in one line listing the supported ones. Nothing here
imports torch or transformers at module level (`pocketbert --help` stays instant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pocketbert.common import UsageError
from pocketbert.registry import Registry

TOKENIZER_KINDS = ("wordpiece", "bpe", "sentencepiece")


@dataclass(frozen=True)
class TinyTokenizer:
    """Special tokens of a BPE/SentencePiece family's tiny tokenizer, in id order from 0 (the tiny
    config's pad/bos/eos ids point at them), and how pairs are joined."""

    specials: tuple[str, ...]
    cls: str
    sep: str
    pad: str
    unk: str
    mask: str
    double_sep: bool = False  # RoBERTa-style pairs: <s> A </s></s> B </s>
    lowercase: bool = False


@dataclass(frozen=True)
class Family:
    name: str  # the config's model_type
    tokenizer_kind: str  # wordpiece | bpe | sentencepiece (the app runs wordpiece only)
    tiny: dict[str, Any]  # config kwargs of the `<name>-tiny` preset (tests: seconds to export)
    mlm_logits: Callable[[Any, Any], Any]  # (a *ForMaskedLM, hidden (n, dim)) -> logits (n, vocab)
    mlm_head_keys: tuple[str, ...]  # weight-name prefixes of its MLM head (does a checkpoint carry one?)
    aliases: tuple[str, ...] = ()  # other model_types transformers runs with this family's code
    token_type_ids: bool = False  # segment embeddings: fed when config.type_vocab_size > 1
    position_ids: str = "absolute"  # how positions are made: absolute | padding-offset | relative | rotary
    layers: str = "encoder.layer"  # the layer ModuleList inside the base model (model.base_model)
    embeddings: str = "embeddings"  # the embeddings module inside the base model
    head_keys: tuple[str, ...] = ()  # this family's own task-head/pooler weight prefixes
    layer_copy: str = ""  # why a student cannot be initialised by copying layers ("": it can)
    first_layer_kept: str = ""  # why a student's first layer must be the teacher's first ("": any layer)
    ort_model_type: str | None = None  # onnxruntime.transformers optimizer model_type (None: not run)
    limits: dict[str, str] = field(default_factory=dict)  # "target" or "target/precision" -> why refused
    mask: str = "additive"  # how the export wrapper feeds attention_mask: additive (a (bs,1,1,seq) float
    # bias it makes) or binary (the 0/1 (bs, seq) mask as given: the model builds its own masks)
    tiny_tokenizer: TinyTokenizer | None = None  # BPE/SentencePiece presets' tokenizer (None: WordPiece)
    # Students of this family's teachers are DistilBERTs (the paper) when these two are set, else
    # the same family with fewer layers: (config) -> DistilBertConfig kwargs of the teacher's width,
    # and (teacher state dict, chosen layers, has MLM head) -> the student's state dict.
    distilbert_config: Callable[[Any], dict[str, Any]] | None = None
    distilbert_weights: Callable[[dict[str, Any], list[int], bool], dict[str, Any]] | None = None

    def uses_token_type_ids(self, config) -> bool:
        return self.token_type_ids and getattr(config, "type_vocab_size", 0) > 1

    def input_names(self, config) -> list[str]:
        names = ["input_ids", "attention_mask"]
        return names + ["token_type_ids"] if self.uses_token_type_ids(config) else names

    def refusal(self, target: str, precision: str) -> str:
        """Why this family cannot be exported to target/precision ("" when it can)."""
        return self.limits.get(f"{target}/{precision}") or self.limits.get(target, "")

    def check_export(self, target: str, precision: str) -> None:
        why = self.refusal(target, precision)
        if why:
            raise UsageError(f"{self.name} models cannot be exported to {target} {precision}: {why}")

    def check_layer_copy(self, layers: list[int] | None = None) -> None:
        """Refuse, in one line, a teacher whose layers cannot be copied or a layer map it cannot take."""
        if self.layer_copy:
            raise UsageError(f"cannot distill a {self.name} teacher: {self.layer_copy}")
        if layers and self.first_layer_kept and layers[0] != 0:
            raise UsageError(f"--student-layers {','.join(map(str, layers))}: a {self.name} student must "
                             f"start with teacher layer 0 ({self.first_layer_kept})")

    def layer_list(self, model):
        """The encoder's layer ModuleList of a model (bare or with a head)."""
        return _path(model.base_model, self.layers)

    def num_layers(self, config) -> int:
        return int(config.num_hidden_layers)


def _path(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


REGISTRY: Registry[Family] = Registry(__name__, "model type")
register_record = REGISTRY.register


def register(family: Family) -> Family:
    """A family under its model_type and each alias."""
    for name in (family.name, *family.aliases):
        REGISTRY.register(family, name)
    return family


def family_of(model_type: str | None, where: str = "") -> Family:
    """The family of a model_type; an unknown one is one line naming the supported ones."""
    records = REGISTRY.all()
    if model_type in records:
        return records[model_type]
    what = f"{where} is a '{model_type}' model" if where else f"unknown model type '{model_type}'"
    raise UsageError(f"{what}: pocketbert supports {', '.join(sorted(records))}")


def families() -> dict[str, Family]:
    """One entry per family (aliases left out), in name order."""
    return {n: f for n, f in sorted(REGISTRY.all().items()) if n == f.name}


def model_types() -> list[str]:
    """Every model_type pocketbert loads (families and aliases)."""
    return sorted(REGISTRY.all())

"""Models in, without the internet: named presets (random init from a config), local Hugging Face
folders, or hub ids (when online).

Presets exist because latency, memory and size do not depend on trained weights: a `distilbert-base`
built from its config benchmarks exactly like the released checkpoint. Presets need a tokenizer:
pass `tokenizer=` (a folder or a vocab.txt, e.g. the real bert-base-uncased vocab), or get the small
generated WordPiece vocabulary below.
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocketbert.common import UsageError, lookup
from pocketbert.families import Family, families, family_of
from pocketbert.pooling import DEFAULT_POOLING, read_pooling, transformer_folder
from pocketbert.tasks import get_task, head_keys
from pocketbert.tiny_tokenizers import build_tokenizer

_BERT_BASE = dict(model_type="bert", vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                  num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512)
_DISTILBERT_BASE = dict(model_type="distilbert", vocab_size=30522, dim=768, n_layers=6, n_heads=12,
                        hidden_dim=3072, max_position_embeddings=512)

# name -> config kwargs. `<family>-tiny` presets (each family file's tiny config) are for tests:
# seconds to export, same code paths.
PRESETS: dict[str, dict[str, Any]] = {
    "bert-base": _BERT_BASE,
    "distilbert-base": _DISTILBERT_BASE,
    **{f"{name}-tiny": dict(model_type=name, **fam.tiny) for name, fam in families().items()},
}

# Labels a preset's task head gets (a random-init head has no real labels; these keep outputs named).
PRESET_NUM_LABELS = 2


@dataclass
class LoadedModel:
    """A model in eval mode plus what the exporters and benchmarks need to know about it."""

    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizerFast
    task: str
    source: str  # "preset:NAME", a folder path, or "hub:ID"
    model_type: str  # the config's model_type (a pocketbert.families name or alias)
    pooling: Any = None  # a pooled task's pocketbert.pooling.Pooling (built into the graph)

    @property
    def family(self) -> Family:
        return family_of(self.model_type)

    @property
    def tokenizer_kind(self) -> str:
        return self.family.tokenizer_kind

    @property
    def max_positions(self) -> int:
        return int(self.model.config.max_position_embeddings)

    @property
    def uses_token_type_ids(self) -> bool:
        """Segment embeddings (question=0, context=1) where the family has them (BERT; not DistilBERT)."""
        return self.family.uses_token_type_ids(self.model.config)

    @property
    def input_names(self) -> list[str]:
        return self.family.input_names(self.model.config)

    @property
    def output_names(self) -> list[str]:
        return list(get_task(self.task).output_names)

    @property
    def label_names(self) -> list[str]:
        id2label = getattr(self.model.config, "id2label", None) or {}
        return [id2label[i] for i in sorted(id2label)] if get_task(self.task).labelled else []


def auto_class(task: str):
    """The transformers Auto class of a task (unknown tasks fail listing the valid ones)."""
    return get_task(task).head_class()


def preset_config(name: str, **overrides: Any):
    """The transformers config of a preset (unknown names fail listing the valid ones)."""
    from transformers import AutoConfig

    kwargs = dict(lookup(PRESETS, name, "model preset"))
    kwargs.update(overrides)
    model_type = kwargs.pop("model_type")
    return AutoConfig.for_model(model_type, **kwargs)


def build_preset(name: str, task: str, seed: int = 0, **overrides: Any):
    """A randomly initialised model of preset `name` for `task` (seeded, so reproducible)."""
    import torch

    config = preset_config(name, num_labels=PRESET_NUM_LABELS, **overrides)
    torch.manual_seed(seed)
    model = auto_class(task).from_config(config)
    return _drop_pooler(model, task).eval()


def _drop_pooler(model, task: str):
    """For a pooled task (sentence embeddings), the encoder without BERT's pooler (a dense layer on
    [CLS] that the pooled embedding does not read): not exported, not run. Other tasks keep it: a
    head may read it (DeBERTa-v2's classifier reads its top-level ContextPooler)."""
    if get_task(task).pooled and getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


def _pooling(task: str, folder: Path | None = None):
    """A pooled task's pooling: the folder's sentence-transformers config, else the default."""
    if not get_task(task).pooled:
        return None
    return read_pooling(folder) if folder is not None else DEFAULT_POOLING


# ---------------------------------------------------------------- tokenizers

_COMMON_WORDS = """the of and to in is was for on that with as by at from his her it an are were be
which this or had not but have also first one their its new after who they has two been she
more all there when would other into time can only during over most some where about world
year years city state national school team game season war film music album song river water
what how many does did while through between under against since known called used people
part city north south east west may later early high united american century three four five
question answer context model phone fast small large language paper student teacher data
distillation layer hidden token mask sentence word text number name group system power""".split()


def generated_vocab(size: int = 1024) -> list[str]:
    """A deterministic WordPiece vocabulary for presets: specials, characters, word pieces, words.

    Enough to tokenize any ASCII text without [UNK] (every character has a piece), so synthetic
    inputs look like real ones to the model; padded with `[unusedN]` up to `size`.
    """
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [c for c in string.ascii_lowercase + string.digits + string.punctuation]
    pieces = ["##" + c for c in string.ascii_lowercase + string.digits]
    vocab = list(dict.fromkeys(specials + chars + pieces + _COMMON_WORDS))
    if len(vocab) > size:
        raise ValueError(f"generated vocab needs at least {len(vocab)} entries, got size={size}")
    return vocab + [f"[unused{i}]" for i in range(size - len(vocab))]


def preset_tokenizer(spec: str, tokenizer: str | None = None):
    """The tokenizer of preset `spec`: `tokenizer` (a folder or vocab.txt) when given, else the
    generated WordPiece vocabulary of its size (at most 1024 entries), or for a BPE/SentencePiece
    family a tokenizer of its kind trained offline (pocketbert.tiny_tokenizers)."""
    vocab_size = min(int(PRESETS[spec]["vocab_size"]), 1024)
    family = family_of(PRESETS[spec]["model_type"])
    if tokenizer is None and family.tiny_tokenizer is not None:
        return build_tokenizer(family, vocab_size, _COMMON_WORDS)
    return load_tokenizer(tokenizer, vocab_size=vocab_size)


def load_tokenizer(path: str | os.PathLike | None, vocab_size: int = 1024):
    """A fast BERT tokenizer from a folder, from a vocab.txt, or generated (path=None)."""
    import tempfile

    from transformers import AutoTokenizer, BertTokenizerFast

    if path is None:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "vocab.txt").write_text("\n".join(generated_vocab(vocab_size)) + "\n")
            return BertTokenizerFast.from_pretrained(tmp, do_lower_case=True)
    p = Path(path).expanduser()
    if p.is_file():  # a bare vocab.txt (transformers 5 ignores vocab_file=: load from a folder)
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "vocab.txt").write_bytes(p.read_bytes())
            return BertTokenizerFast.from_pretrained(tmp, do_lower_case=True)
    if p.is_dir():
        if (p / "tokenizer.json").exists() or (p / "tokenizer_config.json").exists():
            return AutoTokenizer.from_pretrained(p)
        if (p / "vocab.txt").exists():
            return BertTokenizerFast.from_pretrained(p, do_lower_case=True)
        raise UsageError(f"no tokenizer in {p}: expected tokenizer.json or vocab.txt")
    raise UsageError(f"tokenizer {path} not found: pass a folder with tokenizer.json/vocab.txt "
                     "or a vocab.txt file")


def _check_family(config, where: str) -> str:
    """The config's model_type, or one line naming the supported ones."""
    model_type = getattr(config, "model_type", None)
    family_of(model_type, where)
    return model_type


def peek_model_type(spec: str) -> str | None:
    """The model_type of a preset or a local folder, read without loading weights (None: a hub id
    or an unreadable config, which load_model reports)."""
    if spec in PRESETS:
        return PRESETS[spec]["model_type"]
    config = transformer_folder(Path(spec).expanduser()) / "config.json"
    try:
        return json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or os.sep in spec.rstrip(os.sep) and spec.count("/") > 1


def load_model(spec: str, task: str, tokenizer: str | None = None, seed: int = 0) -> LoadedModel:
    """Resolve `--model`: a preset name, a local folder, or a hub id (in that order).

    Every failure is a UsageError that names the problem and the fix (no traceback for the
    user): missing folder, unknown model type, corrupt weights, offline hub id.
    """
    auto_class(task)  # fail early on an unknown task
    if spec in PRESETS:
        model = build_preset(spec, task, seed=seed)
        vocab_size = model.config.vocab_size
        tok = preset_tokenizer(spec, tokenizer)
        if len(tok) > vocab_size:
            raise UsageError(f"tokenizer has {len(tok)} tokens but preset '{spec}' only "
                             f"{vocab_size}: use a preset with a larger vocabulary")
        return LoadedModel(model, tok, task, f"preset:{spec}", model.config.model_type, _pooling(task))

    path = Path(spec).expanduser()
    if path.is_dir():
        return _load_folder(path, task, tokenizer)
    if path.exists() or _looks_like_path(spec):
        raise UsageError(f"model folder {spec} not found (or not a folder): pass a Hugging Face "
                         f"folder with config.json, a hub id, or a preset: {', '.join(PRESETS)}")
    return _load_hub(spec, task, tokenizer)


def _load_folder(folder: Path, task: str, tokenizer: str | None) -> LoadedModel:
    import torch
    from transformers import AutoConfig

    pooling = _pooling(task, folder)
    path = transformer_folder(folder)  # a sentence-transformers folder may keep its encoder in a subfolder
    if not (path / "config.json").exists():
        raise UsageError(f"{path} has no config.json: it is not a Hugging Face model folder")
    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 - any parse error is the user's file
        raise UsageError(f"cannot read {path}/config.json ({type(e).__name__}: {e})") from None
    model_type = _check_family(config, str(path))
    weights = [p for p in ("model.safetensors", "pytorch_model.bin") if (path / p).exists()]
    if not weights and not list(path.glob("model*.safetensors")):
        raise UsageError(f"{path} has no weights (model.safetensors or pytorch_model.bin)")
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report is a table; the check below says it in one line
    try:
        model, info = auto_class(task).from_pretrained(path, dtype=torch.float32, output_loading_info=True)
    except Exception as e:  # noqa: BLE001 - corrupt/truncated weights surface as many types
        raise UsageError(f"cannot load the weights in {path} ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200]}): re-download or re-save the model") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    check_loading_info(info, path, task)
    tok = load_tokenizer(tokenizer or path)
    return LoadedModel(_drop_pooler(model, task).eval(), tok, task, str(folder), model_type, pooling)


def check_loading_info(info: dict, path, task: str) -> None:
    """Refuse weights that do not match the config: a model with randomly initialised parts would
    export, pass parity (against the same random model) and answer garbage.

    Missing keys (left at random init) are refused, including the task head: a folder without a
    trained head for `task` is not a model for that task. Unexpected keys are refused too, except
    other tasks' heads and the pooler (a QA folder loaded for fill-mask drops its span head)."""
    missing = [k for k in info.get("missing_keys") or []  # an encoder saved without its pooler: dropped anyway
               if not (get_task(task).pooled and _other_head(k))]
    unexpected = [k for k in info.get("unexpected_keys") or [] if not _other_head(k)]
    mismatched = list(info.get("mismatched_keys") or [])
    if not (missing or unexpected or mismatched):
        return
    parts = []
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong-shape", mismatched)):
        if keys:
            names = [k if isinstance(k, str) else str(k[0]) for k in sorted(keys, key=str)]
            parts.append(f"{len(names)} {what} (e.g. {', '.join(names[:2])})")
    raise UsageError(f"the weights in {path} do not match its config for {task}: {'; '.join(parts)}: "
                     "they belong to another model or head; re-save the model")


def _other_head(key: str) -> bool:
    """A task head's or a pooler's weight (every task's and family's head prefixes)."""
    family_keys = tuple(k for f in families().values() for k in f.head_keys)
    return key.startswith(head_keys() + family_keys + ("pooler.",)) or ".pooler." in key


def hub_reachable(timeout_s: float = 2.0) -> tuple[bool, str]:
    """Whether the Hugging Face hub can be asked: False at once when offline mode is set
    (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE) or its endpoint does not answer a TCP connect within
    `timeout_s` (instead of the hub client's retries, ~25 s on a machine without internet)."""
    import socket
    from urllib.parse import urlparse

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return False, f"{var} is set"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout_s).close()
    except OSError as e:
        return False, f"{url.hostname} unreachable: {type(e).__name__}"
    return True, ""


def _load_hub(spec: str, task: str, tokenizer: str | None) -> LoadedModel:
    import torch
    from transformers import AutoConfig, AutoTokenizer

    online, why = hub_reachable()
    if not online and not _in_hub_cache(spec):
        raise UsageError(f"cannot get '{spec}' from the Hugging Face hub (offline? {why}; not a local "
                         f"folder either): pass a local folder or a preset: {', '.join(PRESETS)}")
    local = {} if online else {"local_files_only": True}  # cached: no network attempt at all
    try:
        config = AutoConfig.from_pretrained(spec, **local)
        _check_family(config, f"hub model '{spec}'")
        model = auto_class(task).from_pretrained(spec, dtype=torch.float32, **local)
        tok = load_tokenizer(tokenizer) if tokenizer else AutoTokenizer.from_pretrained(spec, **local)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - offline, unknown id, gated repo...
        raise UsageError(f"cannot get '{spec}' from the Hugging Face hub ({type(e).__name__}); "
                         f"offline? pass a local folder or a preset: {', '.join(PRESETS)}") from None
    return LoadedModel(_drop_pooler(model, task).eval(), tok, task, f"hub:{spec}", config.model_type, _pooling(task))


def _in_hub_cache(spec: str) -> bool:
    """Whether hub id `spec` has a config in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(spec, "config.json"), str)
    except Exception:  # noqa: BLE001 - an invalid repo id is simply not cached
        return False


def count_parameters(model) -> dict[str, int]:
    """Total and non-embedding parameter counts (tied weights counted once).

    Non-embedding excludes word/position/token-type embeddings, as in scaling-law papers, so a
    model's compute-bearing size is visible apart from its vocabulary table.
    """
    seen: set[int] = set()
    total = embedding = 0
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if "embeddings" in name:
            embedding += p.numel()
    return {"total": total, "non_embedding": total - embedding}


def config_parameters(config: dict, task: str) -> dict[str, int] | None:
    """count_parameters of the model a config.json (its dict) describes, built on the meta device (no
    weights, no memory); None when transformers does not know its model type."""
    import torch
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.for_model(**config)
        with torch.device("meta"):
            return count_parameters(auto_class(task).from_config(cfg))
    except Exception:  # noqa: BLE001 - an unknown model type: the caller falls back
        return None

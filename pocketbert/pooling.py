"""Sentence embeddings from an encoder's token states: how a sentence-transformers folder pools them,
and the pooling itself (inside the exported graph, and in numpy for files that output token states).

A sentence-transformers folder says its pipeline in `modules.json` (Transformer -> Pooling ->
Normalize); the Pooling module's `1_Pooling/config.json` says the mode. pocketbert builds mean or CLS
pooling and the L2 normalisation into the graph, so an ExecuTorch/ONNX file outputs the embedding the
app compares. A plain Hugging Face folder has no pooling config: DEFAULT_POOLING applies.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pocketbert.common import UsageError

MODES = ("mean", "cls")  # what the graph builds; max / mean_sqrt_len are refused in one line
ST_MODULES = "modules.json"
_ST_MODE_KEYS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
                 "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
                 "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
NORM_EPS = 1e-12  # torch.nn.functional.normalize's eps (sentence-transformers' Normalize uses it)
MEAN_EPS = 1e-9  # sentence-transformers' Pooling clamps the token count to this


@dataclass(frozen=True)
class Pooling:
    mode: str  # "mean" | "cls"
    normalize: bool  # L2-normalise the pooled vector (cosine = dot product on device)
    source: str  # where it was read: a 1_Pooling/config.json path, or "default"

    def to_dict(self) -> dict:
        return asdict(self)


# No sentence-transformers config: mean over the unpadded tokens (sentence-transformers' own default
# mode, and what models trained for embeddings with it use) and L2-normalised, so the app ranks by a
# dot product and a file's output is directly comparable with any other normalised embedding.
DEFAULT_POOLING = Pooling("mean", True, "default")


def st_modules(folder: Path) -> list[dict] | None:
    """A sentence-transformers folder's modules.json entries (None: not such a folder)."""
    path = Path(folder) / ST_MODULES
    if not path.is_file():
        return None
    try:
        modules = json.loads(path.read_text())
        if not isinstance(modules, list) or not all(isinstance(m, dict) and "type" in m for m in modules):
            raise ValueError("expected a list of modules with a 'type'")
    except ValueError as e:
        raise UsageError(f"cannot read {path} ({e}): re-save the sentence-transformers model") from None
    return modules


def _module(modules: list[dict], kind: str) -> dict | None:
    return next((m for m in modules if str(m["type"]).rsplit(".", 1)[-1] == kind), None)


def transformer_folder(folder: Path) -> Path:
    """The Hugging Face folder (config.json + weights) of a model folder: itself, or the path of a
    sentence-transformers folder's Transformer module (old ones keep it in 0_Transformer/)."""
    modules = st_modules(folder)
    module = _module(modules, "Transformer") if modules else None
    return Path(folder) / module.get("path", "") if module else Path(folder)


def read_pooling(folder: Path) -> Pooling:
    """The pooling of a model folder: its sentence-transformers Pooling (+ Normalize) modules, else
    `1_Pooling/config.json` beside the weights, else DEFAULT_POOLING. Unsupported modes fail in one line."""
    folder = Path(folder)
    modules = st_modules(folder)
    if modules is None:
        config = folder / "1_Pooling" / "config.json"
        return _from_config(config, normalize=True) if config.is_file() else DEFAULT_POOLING
    pooling = _module(modules, "Pooling")
    if pooling is None:
        raise UsageError(f"{folder / ST_MODULES} has no Pooling module: pocketbert exports a sentence "
                         "embedding (Transformer -> Pooling [-> Normalize])")
    extra = [str(m["type"]) for m in modules if str(m["type"]).rsplit(".", 1)[-1]
             not in ("Transformer", "Pooling", "Normalize")]
    if extra:
        raise UsageError(f"{folder / ST_MODULES}: module {extra[0]} is not exported by pocketbert (it builds "
                         "Transformer -> Pooling -> Normalize only)")
    return _from_config(folder / pooling.get("path", "1_Pooling") / "config.json",
                        normalize=_module(modules, "Normalize") is not None)


def _from_config(path: Path, normalize: bool) -> Pooling:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read the pooling config {path} ({type(e).__name__})") from None
    modes = [mode for key, mode in _ST_MODE_KEYS.items() if config.get(key)]
    if config.get("pooling_mode") and not modes:  # newer sentence-transformers also write the name
        modes = [str(config["pooling_mode"]).replace("_tokens", "").replace("_token", "")]
    if len(modes) != 1 or modes[0] not in MODES:
        raise UsageError(f"{path}: pooling {'+'.join(modes) or 'none'} is not built by pocketbert "
                         f"(it builds one of: {', '.join(MODES)})")
    return Pooling(modes[0], normalize, str(path))


def pool_tensor(hidden, mask, pooling: Pooling):
    """(bs, seq, hidden) token states and the (bs, seq) 0/1 mask -> (bs, hidden), in the graph.

    Tensor methods only (no torch import here): the ops every target lowers (mul, sum, div, sqrt)."""
    if pooling.mode == "cls":
        out = hidden[:, 0]
    else:
        keep = mask.unsqueeze(-1).to(hidden.dtype)  # (bs, seq, 1)
        out = (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=MEAN_EPS)
    if pooling.normalize:
        out = out / (out * out).sum(dim=-1, keepdim=True).sqrt().clamp(min=NORM_EPS)
    return out


def pool_numpy(hidden, n_tokens: int, pooling: Pooling = DEFAULT_POOLING):
    """The same in numpy for a file that outputs token states, (seq, hidden) right-padded, of which
    the first `n_tokens` are real: what a user of such a file runs after every call."""
    import numpy as np

    states = np.asarray(hidden, dtype=np.float32)[:n_tokens]
    out = states[0] if pooling.mode == "cls" else states.mean(axis=0)
    if pooling.normalize:
        out = out / max(float(np.sqrt((out * out).sum())), NORM_EPS)
    return out

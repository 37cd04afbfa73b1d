"""The pre-training distillation run config: every knob, its default (the CLI reads these) and
the checks that run before anything touches the disk."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketbert.common import UsageError, git_revision, library_versions, write_json

# fields whose command-line flag is not simply --field-name
FLAGS = {"fit_mlm_head_steps": "--fit-mlm-head"}


@dataclass
class DistillConfig:
    # -- models
    teacher: str = "bert-tiny"  # preset, HF folder or hub id: a BERT-family encoder
    tokenizer: str | None = None  # tokenizer folder / vocab.txt; default: the teacher's own
    student_layers: str | None = None  # teacher layers to copy ("0,2,4"); default one of two (12 -> 0,2,4,7,9,11)
    init: str = "copy"  # "copy" teacher weights (the paper) or "random" (ablation)
    fit_mlm_head_steps: int = 0  # teacher without MLM head: fit one on the frozen teacher first (0: hidden-state/embedding terms only)
    fit_mlm_head_lr: float = 1e-3  # AdamW lr for that head (only the transform and bias train)
    # -- loss (the released DistilBERT recipe)
    alpha_ce: float = 5.0  # KL(student || teacher) on T-softened MLM logits, x T^2
    alpha_mlm: float = 2.0  # masked-LM cross-entropy on the true tokens
    alpha_cos: float = 1.0  # 1 - cosine(student, teacher) of last hidden states: aligns directions
    alpha_mse: float = 0.0  # MSE between MLM logits (the reference's optional term)
    alpha_hidden_mse: float = 0.0  # MSE between last hidden states (useful without MLM head)
    alpha_pool_cos: float = 0.0  # 1 - cosine of mean-pooled sentence embeddings (embedding teachers)
    alpha_sim: float = 0.0  # MSE between in-batch sentence cosine-similarity matrices (embedding teachers)
    temperature: float = 2.0  # > 0: softens both distributions so the teacher's dark knowledge shows
    mlm_prob: float = 0.15  # in (0, 1): fraction of real tokens to predict (BERT)
    mlm_smoothing: float = 0.7  # masking weight ∝ count^-0.7: rare tokens masked more (reference)
    # -- data
    data: list[str] = field(default_factory=list)  # plain-text files, one text per line
    data_cache: str | None = None  # where tokenized memmaps go (default OUT/data); reused when inputs match
    max_len: int = 512  # longer texts are cut into several sequences (BERT's position limit)
    min_len: int = 3  # drop fragments shorter than this (in word pieces)
    batch_size: int = 8  # sequences per micro-batch per process (length-grouped)
    grad_accum: int = 1  # micro-batches per optimizer step: the paper used ~4K sequences a step
    # -- optimisation
    epochs: int = 3  # passes over the corpus (the reference: 3); used when max_steps is 0
    max_steps: int = 0  # stop after this many optimizer steps; 0 (the default) means "no cap: run
    #                     `epochs` full passes" -- the start-up log line says how many steps that is
    lr: float = 5e-4  # AdamW peak learning rate (reference: 5e-4)
    weight_decay: float = 0.0  # reference: 0
    adam_eps: float = 1e-6  # reference: 1e-6
    warmup: float = 0.05  # in [0, 1): fraction of steps of linear warm-up, then linear decay to 0
    max_grad_norm: float = 5.0  # gradient clipping (reference: 5)
    dropout: float = 0.1  # student dropout (teacher runs in eval mode)
    # -- run
    out: str = "runs/distill"  # checkpoints, metrics.jsonl, config.json, student/ (HF folder)
    seed: int = 56  # seeds init, batch order, masking, dropout (reference: 56)
    save_every: int = 200  # optimizer steps between checkpoints (and one at the end)
    keep_checkpoints: int = 2  # older ones are pruned once a newer one is complete (0: keep all)
    log_every: int = 10  # optimizer steps between metrics.jsonl lines
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (bf16/fp16 on GPU, off on CPU) | off | bf16 | fp16
    eval_data: str | None = None  # held-out text: MLM accuracy / hidden cosine after training
    progress: bool = True  # tqdm bars

    def validate(self) -> None:
        """Raise a one-line UsageError naming the flag of the first bad knob."""
        check = Checker(self)
        check.choice("init", ("copy", "random"))
        check.choice("device", ("auto", "cpu", "cuda"))
        check.choice("amp", ("auto", "off", "bf16", "fp16"))
        check.at_least("fit_mlm_head_steps", 0)
        check.positive("fit_mlm_head_lr")
        for name in ("alpha_ce", "alpha_mlm", "alpha_cos", "alpha_mse", "alpha_hidden_mse",
                     "alpha_pool_cos", "alpha_sim", "weight_decay", "mlm_smoothing"):
            check.at_least(name, 0.0)
        check.positive("temperature")
        check.open_unit("mlm_prob")
        check.at_least("min_len", 1)
        check.at_least("max_len", 8)
        check.at_least("batch_size", 1)
        check.at_least("grad_accum", 1)
        check.at_least("epochs", 1)
        check.at_least("max_steps", 0)
        check.positive("lr")
        check.positive("adam_eps")
        check.unit("warmup")
        check.positive("max_grad_norm")
        check.unit("dropout")
        check.at_least("save_every", 1)
        check.at_least("keep_checkpoints", 0)
        check.at_least("log_every", 1)


class Checker:
    """One-line range checks on a config's fields, each naming the field's flag."""

    def __init__(self, cfg: Any, flags: dict[str, str] | None = None):
        self.cfg, self.flags = cfg, {**FLAGS, **(flags or {})}

    def flag(self, name: str) -> str:
        return self.flags.get(name, "--" + name.replace("_", "-"))

    def _value(self, name: str, kind: type) -> Any:
        v = getattr(self.cfg, name)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) if kind is float else \
            isinstance(v, int) and not isinstance(v, bool)
        if not ok or (kind is float and not math.isfinite(v)):
            raise UsageError(f"{self.flag(name)} must be a finite {'number' if kind is float else 'integer'}, "
                             f"got {v!r}")
        return v

    def _fail(self, name: str, rule: str) -> None:
        raise UsageError(f"{self.flag(name)} must be {rule}, got {getattr(self.cfg, name)!r}")

    def at_least(self, name: str, low: float) -> None:
        if self._value(name, float if isinstance(low, float) else int) < low:
            self._fail(name, f">= {low}")

    def positive(self, name: str) -> None:
        if self._value(name, float) <= 0:
            self._fail(name, "> 0")

    def open_unit(self, name: str) -> None:
        if not 0 < self._value(name, float) < 1:
            self._fail(name, "between 0 and 1 (both excluded)")

    def unit(self, name: str) -> None:
        if not 0 <= self._value(name, float) < 1:
            self._fail(name, "in [0, 1)")

    def choice(self, name: str, allowed: tuple[str, ...]) -> None:
        if getattr(self.cfg, name) not in allowed:
            self._fail(name, "one of " + ", ".join(allowed))


def save_run_config(cfg: Any, out: Path, extra: dict[str, Any] | None = None) -> None:
    """The resolved config + provenance, next to the checkpoints."""
    write_json(Path(out) / "config.json", {"config": dataclasses.asdict(cfg),
                                           "git_revision": git_revision(),
                                           "versions": library_versions(), **(extra or {})})

"""The pre-training distillation run config: every knob with its default, choices and range (the
CLI's flags are generated from these fields) and the checks that run before anything touches the disk."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocketbert import argtypes as t
from pocketbert.common import git_revision, library_versions, write_json
from pocketbert.knobs import check_knobs, knob

DEVICE = t.choice(("auto", "cpu", "cuda"), "device")  # both modes' --device: auto = cuda when there is one
AMP = t.choice(("auto", "off", "bf16", "fp16"), "amp mode")  # auto: bf16/fp16 on GPU, off on CPU


@dataclass
class DistillConfig:
    # -- models
    teacher: str = knob("bert-tiny", rule=t.model)  # preset, HF folder or hub id: a BERT-family encoder
    tokenizer: str | None = knob(None, rule=t.tokenizer, none="the teacher's")  # tokenizer folder / vocab.txt
    # teacher layers to copy ("0,2,4"); default one of two (12 -> 0,2,4,7,9,11)
    student_layers: str | None = knob(None, rule=t.layer_map, none="one of two; 12 layers: 'reference'")
    init: str = knob("copy", rule=t.choice(("copy", "random"), "init"), why="the paper's")  # or random (ablation)
    # teacher without MLM head: fit one on the frozen teacher first (0: hidden-state/embedding terms only)
    fit_mlm_head_steps: int = knob(0, rule=t.nonneg_int, flag="--fit-mlm-head",
                                   why="distil with the hidden-state/embedding terms only")
    fit_mlm_head_lr: float = knob(1e-3, rule=t.positive_float)  # AdamW lr for that head (only the transform and bias train)
    # -- loss (the released DistilBERT recipe)
    alpha_ce: float = knob(5.0, rule=t.nonneg_float)  # KL(student || teacher) on T-softened MLM logits, x T^2
    alpha_mlm: float = knob(2.0, rule=t.nonneg_float)  # masked-LM cross-entropy on the true tokens
    alpha_cos: float = knob(1.0, rule=t.nonneg_float)  # 1 - cosine(student, teacher) of last hidden states: aligns directions
    alpha_mse: float = knob(0.0, rule=t.nonneg_float)  # MSE between MLM logits (the reference's optional term)
    alpha_hidden_mse: float = knob(0.0, rule=t.nonneg_float)  # MSE between last hidden states (useful without MLM head)
    alpha_pool_cos: float = knob(0.0, rule=t.nonneg_float)  # 1 - cosine of mean-pooled sentence embeddings (embedding teachers)
    alpha_sim: float = knob(0.0, rule=t.nonneg_float)  # MSE between in-batch sentence cosine-similarity matrices (embedding teachers)
    temperature: float = knob(2.0, rule=t.positive_float)  # softens both distributions so the teacher's dark knowledge shows
    # fraction of real tokens to predict (BERT)
    mlm_prob: float = knob(0.15, rule=t.float_range(0.0, 1.0, lo_open=True, hi_open=True), why="BERT's")
    mlm_smoothing: float = knob(0.7, rule=t.nonneg_float)  # masking weight ∝ count^-0.7: rare tokens masked more (reference)
    # -- data
    data: list[str] = knob(factory=list, rule=t.as_text(t.text_file))  # plain-text files, one text per line
    # where tokenized memmaps go; reused when inputs match
    data_cache: str | None = knob(None, rule=t.as_text(t.output_root), none="OUT/data")
    # longer texts are cut into several sequences
    max_len: int = knob(512, rule=t.int_range(8, 4096), why="BERT's position limit")
    min_len: int = knob(3, rule=t.int_range(1))  # drop fragments shorter than this (in word pieces)
    batch_size: int = knob(8, rule=t.positive_int)  # sequences per micro-batch per process (length-grouped)
    grad_accum: int = knob(1, rule=t.positive_int)  # micro-batches per optimizer step: the paper used ~4K sequences a step
    # -- optimisation
    epochs: int = knob(3, rule=t.positive_int, why="the reference's")  # passes over the corpus; used when max_steps is 0
    # stop after this many optimizer steps; 0 means "no cap: run `epochs` full passes" -- the
    # start-up log line says how many steps that is
    max_steps: int = knob(0, rule=t.nonneg_int, why="no cap: run --epochs")
    lr: float = knob(5e-4, rule=t.positive_float, why="the reference's")  # AdamW peak learning rate
    weight_decay: float = knob(0.0, rule=t.nonneg_float)  # reference: 0
    adam_eps: float = knob(1e-6, rule=t.positive_float)  # reference: 1e-6
    # fraction of steps of linear warm-up, then linear decay to 0
    warmup: float = knob(0.05, rule=t.float_range(0.0, 1.0, hi_open=True))
    max_grad_norm: float = knob(5.0, rule=t.positive_float)  # gradient clipping (reference: 5)
    # student dropout (teacher runs in eval mode)
    dropout: float = knob(0.1, rule=t.float_range(0.0, 1.0, hi_open=True),
                          why="the paper's; 0 matched an embedding teacher better")
    # -- run
    out: str = knob("runs/distill", rule=t.as_text(t.output_dir))  # checkpoints, metrics.jsonl, config.json, student/
    seed: int = knob(56, rule=t.nonneg_int, why="the reference's")  # seeds init, batch order, masking, dropout
    save_every: int = knob(200, rule=t.positive_int)  # optimizer steps between checkpoints (and one at the end)
    keep_checkpoints: int = knob(2, rule=t.nonneg_int)  # older ones are pruned once a newer one is complete (0: keep all)
    log_every: int = knob(10, rule=t.positive_int)  # optimizer steps between metrics.jsonl lines
    device: str = knob("auto", rule=DEVICE)
    amp: str = knob("auto", rule=AMP)  # auto: bf16/fp16 on GPU, off on CPU
    # held-out text: MLM accuracy / hidden cosine after training
    eval_data: str | None = knob(None, rule=t.as_text(t.text_file), none="none")
    progress: bool = True  # tqdm bars

    def validate(self) -> None:
        """Raise a one-line UsageError naming the flag of the first bad knob (its flag's own rule)."""
        check_knobs(self)


def save_run_config(cfg: Any, out: Path, extra: dict[str, Any] | None = None) -> None:
    """The resolved config + provenance, next to the checkpoints."""
    write_json(Path(out) / "config.json", {"config": dataclasses.asdict(cfg),
                                           "git_revision": git_revision(),
                                           "versions": library_versions(), **(extra or {})})

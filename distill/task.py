"""Task-specific distillation, the paper's DistilBERT (D): fine-tune the student on task data with
the task loss plus a distillation term towards a fine-tuned teacher's logits
(KL on T-softened logits for QA and classification, MSE for regression), then evaluate both.

Pipeline: load teacher -> build student -> load data -> train -> evaluate -> save.
Inputs: SQuAD v1.1 JSON (question-answering); GLUE-style TSV with a header (STS-B: sentence1,
sentence2, score -> regression; SST-2: sentence, label -> sequence-classification).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocketbert.common import CheckFailed, UsageError, check_output_dir, write_json

TASKS = ("question-answering", "sequence-classification", "regression")


@dataclass
class TaskConfig:
    task: str = "sequence-classification"  # question-answering | sequence-classification | regression
    teacher: str = "bert-tiny"  # a fine-tuned BERT-family teacher for the task (folder, hub id, preset)
    train_file: str = ""  # SQuAD v1.1 JSON or GLUE-style TSV with a header row
    eval_file: str | None = None  # same format; scored for teacher and student after training
    student: str | None = None  # a distilled student folder to start from; default: copy teacher layers
    student_layers: str | None = None  # when copying from the teacher: which layers (default one of two)
    tokenizer: str | None = None  # default: the teacher's
    alpha_task: float = 1.0  # weight of the task loss on the gold labels
    alpha_kd: float = 1.0  # weight of KL (QA, classification) / MSE (regression) to the teacher
    temperature: float = 2.0  # > 0: softening for the KL term (scaled by T^2)
    max_len: int = 384  # QA windows / pair length (SQuAD standard: 384)
    doc_stride: int = 128  # overlap between QA windows of a long context (< max_len)
    batch_size: int = 16  # examples per step
    epochs: int = 2  # passes over the training data; used when max_steps is 0
    max_steps: int = 0  # stop after this many steps; 0 (the default) means "no cap: run `epochs`"
    lr: float = 5e-5  # AdamW peak learning rate (fine-tuning scale)
    weight_decay: float = 0.01  # standard fine-tuning decay
    warmup: float = 0.1  # in [0, 1): fraction of steps of linear warm-up, then linear decay
    max_grad_norm: float = 1.0  # gradient clipping
    seed: int = 42  # init, order, dropout
    out: str = "runs/distill-task"  # student/ (HF folder), metrics.json, config.json
    progress: bool = True  # tqdm bars

    def validate(self) -> None:
        """Raise a one-line UsageError naming the flag of the first bad knob."""
        from distill.config import Checker

        check = Checker(self)
        check.choice("task", TASKS)
        if not self.train_file:
            raise UsageError("task distillation needs --train-file")
        for name in ("alpha_task", "alpha_kd", "weight_decay"):
            check.at_least(name, 0.0)
        check.positive("temperature")
        check.at_least("max_len", 8)
        check.at_least("doc_stride", 1)
        if self.task == "question-answering" and self.doc_stride >= self.max_len:
            raise UsageError(f"--doc-stride must be less than --max-len ({self.max_len}), "
                             f"got {self.doc_stride}")
        check.at_least("batch_size", 1)
        check.at_least("epochs", 1)
        check.at_least("max_steps", 0)
        check.positive("lr")
        check.unit("warmup")
        check.positive("max_grad_norm")


def distill_task(cfg: TaskConfig, overwrite: bool = False) -> dict[str, Any]:
    """Task distillation pipeline; returns the metrics (also written to OUT/metrics.json)."""
    import torch

    cfg.validate()
    out = Path(cfg.out)
    check_output_dir(out, overwrite)
    torch.manual_seed(cfg.seed)
    teacher, tok, teacher_type = load_task_teacher(cfg)
    data = load_task_data(cfg, cfg.train_file, tok, train=True, teacher=teacher)
    student = build_task_student(cfg, teacher, teacher_type, data.get("num_labels"))
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    from pocketbert.common import mark_output

    mark_output(out)  # ours: --overwrite may replace it later
    from distill.config import save_run_config

    save_run_config(cfg, out)
    t0 = time.time()
    try:
        history = train_task(cfg, teacher, teacher_type, student, data)
    except BaseException:
        if created:  # a run that stopped (non-finite loss, Ctrl-C) leaves no config.json behind
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        raise
    metrics: dict[str, Any] = {"task": cfg.task, "train_seconds": time.time() - t0,
                               "train_examples": data["n_examples"], "final_loss": history}
    if cfg.eval_file:
        ev = load_task_data(cfg, cfg.eval_file, tok, train=False, label_map=data.get("label_map"))
        metrics["teacher"] = evaluate_task(cfg, teacher, teacher_type, ev)
        metrics["student"] = evaluate_task(cfg, student, "distilbert", ev)
    from pocketbert.common import atomic_output_dir

    with atomic_output_dir(out / "student", overwrite=True) as tmp:
        student.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    write_json(out / "metrics.json", metrics)
    return metrics


# ----------------------------------------------------------------------------- models

def _auto_class(task: str):
    """Regression is a one-label sequence-classification head."""
    from pocketbert.models import auto_class

    return auto_class("sequence-classification" if task == "regression" else task)


def load_task_teacher(cfg: TaskConfig):
    """The fine-tuned teacher (frozen, eval) and its tokenizer."""
    from pocketbert.models import PRESETS, load_model, load_tokenizer, preset_config

    if cfg.teacher in PRESETS:  # tests: random teacher from a preset config
        import torch

        num_labels = 1 if cfg.task == "regression" else 2
        kw = {} if cfg.task == "question-answering" else {"num_labels": num_labels}
        torch.manual_seed(cfg.seed)
        model = _auto_class(cfg.task).from_config(preset_config(cfg.teacher, **kw))
        tok = load_tokenizer(cfg.tokenizer, vocab_size=min(model.config.vocab_size, 1024))
        mtype = model.config.model_type
    else:
        task = "question-answering" if cfg.task == "question-answering" else "sequence-classification"
        loaded = load_model(cfg.teacher, task, tokenizer=cfg.tokenizer)
        model, tok, mtype = loaded.model, loaded.tokenizer, loaded.model_type
        if cfg.task == "regression" and model.config.num_labels != 1:
            raise UsageError(f"teacher {cfg.teacher} has {model.config.num_labels} labels: a "
                             "regression teacher has 1")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tok, mtype


def build_task_student(cfg: TaskConfig, teacher, teacher_type: str, num_labels: int | None):
    """A DistilBERT task model: from a distilled student folder, or by copying teacher layers
    (QA: the teacher's span head too; classifiers get a fresh head since BERT's pooler differs)."""
    import torch
    from transformers import DistilBertForQuestionAnswering, DistilBertForSequenceClassification

    n_labels = 1 if cfg.task == "regression" else (num_labels or teacher.config.num_labels)
    extra = {} if cfg.task == "question-answering" else {"num_labels": n_labels}
    if cfg.task == "regression":
        extra["problem_type"] = "regression"
    if cfg.student:
        path = Path(cfg.student)
        if not (path / "config.json").exists():
            raise UsageError(f"--student {path} is not a Hugging Face model folder")
        if json.loads((path / "config.json").read_text()).get("model_type") != "distilbert":
            raise UsageError(f"--student {path} is not a DistilBERT model")
        return _auto_class(cfg.task).from_pretrained(path, dtype=torch.float32, **extra)
    from distill.student import Teacher, map_teacher_weights, parse_layers, student_config

    encoder = getattr(teacher, teacher_type)  # .bert / .distilbert
    enc_teacher = Teacher(encoder, None, teacher_type, False, cfg.teacher)
    layers = parse_layers(cfg.student_layers, enc_teacher.num_layers)
    config = student_config(enc_teacher, layers)
    for k, v in extra.items():
        setattr(config, k, v)
    torch.manual_seed(cfg.seed)
    cls = DistilBertForQuestionAnswering if cfg.task == "question-answering" else \
        DistilBertForSequenceClassification
    student = cls(config)
    student.distilbert.load_state_dict(map_teacher_weights(enc_teacher, layers))
    if cfg.task == "question-answering":
        student.qa_outputs.load_state_dict(teacher.qa_outputs.state_dict())
    return student


# ----------------------------------------------------------------------------- data

def load_task_data(cfg: TaskConfig, path: str, tok, train: bool, label_map=None,
                   teacher=None) -> dict[str, Any]:
    """Tokenized features (lists, padded per batch) plus what evaluation needs."""
    from pocketbert import glue, squad

    if cfg.task == "question-answering":
        questions = squad.read_squad(path)
        wins = squad.windows(tok, questions, cfg.max_len, cfg.doc_stride, labels=train)
        return {"features": wins, "n_examples": len(questions), "examples": {q.id: q for q in questions}}
    rows = glue.read_tsv(path, need_labels=True)
    if cfg.task == "regression":
        labels = glue.float_labels(rows)
    else:
        if label_map is None:
            label_map = {v: i for i, v in enumerate(sorted(set(rows.labels)))}
        unknown = sorted(set(rows.labels) - set(label_map))
        if unknown:
            raise UsageError(f"{path}: labels {unknown[:5]} not in the training labels {sorted(label_map)}")
        labels = [label_map[x] for x in rows.labels]
        if teacher is not None and teacher.config.num_labels != len(label_map):
            raise UsageError(f"teacher has {teacher.config.num_labels} labels but {path} has "
                             f"{len(label_map)}: pass the teacher fine-tuned on this task")
    enc = tok(rows.first, rows.second, truncation=True, max_length=min(cfg.max_len, 512))
    feats = [{"input_ids": enc["input_ids"][i],
              "token_type_ids": enc.get("token_type_ids", [[0] * len(x) for x in enc["input_ids"]])[i],
              "label": labels[i]} for i in range(len(rows.ids))]
    return {"features": feats, "n_examples": len(rows.ids), "label_map": label_map,
            "num_labels": len(label_map) if label_map else 1}


def _as_feature(f) -> dict[str, Any]:
    """A SQuAD window or a TSV feature as the dict collate reads."""
    from pocketbert.squad import Window

    if isinstance(f, Window):
        n = len(f.inputs["input_ids"])
        return {"input_ids": f.inputs["input_ids"], "token_type_ids": f.inputs.get("token_type_ids", [0] * n),
                "start": f.start, "end": f.end}
    return f


def collate_task(feats: list[dict[str, Any]], pad_id: int, task: str):
    """Pad a batch. -> dict of tensors: input_ids/attention_mask/token_type_ids (bs, seq), labels."""
    import torch

    feats = [_as_feature(f) for f in feats]
    width = max(len(f["input_ids"]) for f in feats)
    ids = torch.full((len(feats), width), pad_id, dtype=torch.long)  # (bs, seq)
    att = torch.zeros((len(feats), width), dtype=torch.long)  # (bs, seq)
    tt = torch.zeros((len(feats), width), dtype=torch.long)  # (bs, seq)
    for r, f in enumerate(feats):
        n = len(f["input_ids"])
        ids[r, :n] = torch.tensor(f["input_ids"])
        att[r, :n] = 1
        tt[r, :n] = torch.tensor(f["token_type_ids"])
    batch = {"input_ids": ids, "attention_mask": att, "token_type_ids": tt}
    if task == "question-answering":
        batch["start"] = torch.tensor([f["start"] for f in feats])  # (bs,)
        batch["end"] = torch.tensor([f["end"] for f in feats])  # (bs,)
    else:
        dtype = torch.float32 if task == "regression" else torch.long
        batch["label"] = torch.tensor([f["label"] for f in feats], dtype=dtype)  # (bs,)
    return batch


def _forward(model, model_type: str, batch, task: str):
    """Logits of a task model: QA -> (start, end) each (bs, seq); else (bs, labels)."""
    kw = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if model_type == "bert":
        kw["token_type_ids"] = batch["token_type_ids"]
    out = model(**kw)
    if task == "question-answering":
        pad = batch["attention_mask"] == 0  # (bs, seq)
        return (out.start_logits.masked_fill(pad, -1e4), out.end_logits.masked_fill(pad, -1e4))
    return (out.logits,)


def task_losses(task: str, s_out, t_out, batch, temperature: float) -> tuple[Any, Any]:
    """(task loss, distillation loss) for one batch."""
    import torch.nn.functional as F

    from distill.losses import kd_kl_loss

    if task == "question-answering":
        ce = (F.cross_entropy(s_out[0], batch["start"]) + F.cross_entropy(s_out[1], batch["end"])) / 2
        kd = (kd_kl_loss(s_out[0], t_out[0], temperature) + kd_kl_loss(s_out[1], t_out[1], temperature)) / 2
        return ce, kd
    if task == "regression":
        pred, tpred = s_out[0].squeeze(-1), t_out[0].squeeze(-1)  # (bs,)
        return F.mse_loss(pred, batch["label"]), F.mse_loss(pred, tpred)
    return F.cross_entropy(s_out[0], batch["label"]), kd_kl_loss(s_out[0], t_out[0], temperature)


# ----------------------------------------------------------------------------- train / evaluate

def train_task(cfg: TaskConfig, teacher, teacher_type: str, student, data) -> dict[str, float]:
    import numpy as np
    import torch
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    feats = data["features"]
    pad_id = 0
    steps_per_epoch = math.ceil(len(feats) / cfg.batch_size)
    total = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * steps_per_epoch
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup * total), total)
    student.train()
    rng = np.random.default_rng(cfg.seed)
    order: list[int] = []
    last: dict[str, float] = {}
    bar = tqdm(range(total), desc=f"distilling ({cfg.task})", disable=not cfg.progress)
    for step in bar:
        if not order:
            order = list(rng.permutation(len(feats)))
        idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
        batch = collate_task([feats[i] for i in idx], pad_id, cfg.task)
        with torch.no_grad():
            t_out = _forward(teacher, teacher_type, batch, cfg.task)
        s_out = _forward(student, "distilbert", batch, cfg.task)
        task_loss, kd = task_losses(cfg.task, s_out, t_out, batch, cfg.temperature)
        loss = cfg.alpha_task * task_loss + cfg.alpha_kd * kd
        loss.backward()
        gnorm = float(torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.max_grad_norm))
        if not (math.isfinite(float(loss.detach())) and math.isfinite(gnorm)):
            bar.close()
            raise CheckFailed(f"non-finite loss at step {step + 1} (loss={float(loss.detach()):.3g}, "
                              f"grad norm={gnorm:.3g}): training stopped, no student saved "
                              "(lower --lr or check --temperature)")
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        last = {"loss": float(loss.detach()), "task": float(task_loss.detach()), "kd": float(kd.detach())}
        bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()})
    student.eval()
    return last


def evaluate_task(cfg: TaskConfig, model, model_type: str, data, batch_size: int = 32) -> dict[str, Any]:
    """SQuAD EM/F1, STS-B Pearson/Spearman, or accuracy."""
    import torch

    from pocketbert import glue, squad

    feats = data["features"]
    outs = []
    with torch.no_grad():
        for i in range(0, len(feats), batch_size):
            batch = collate_task(feats[i:i + batch_size], 0, cfg.task)
            o = _forward(model, model_type, batch, cfg.task)
            for r in range(len(batch["input_ids"])):
                outs.append([x[r] for x in o])
    if cfg.task == "question-answering":
        preds = squad.predictions(feats, [(s.numpy(), e.numpy()) for s, e in outs], data["examples"])
        golds = {qid: q.gold_texts for qid, q in data["examples"].items()}
        return squad.scores(preds, golds)
    if cfg.task == "regression":
        return glue.pearson_spearman([float(o[0]) for o in outs], [f["label"] for f in feats])
    return glue.accuracy([int(o[0].argmax()) for o in outs], [f["label"] for f in feats])

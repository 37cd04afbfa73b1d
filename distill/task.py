"""Task-specific distillation, the paper's DistilBERT (D): fine-tune the student on task data with
the task loss plus a distillation term towards a fine-tuned teacher's logits (KL on T-softened
logits scaled by T² for QA and classification, MSE for regression), optionally matching mapped
intermediate layers (hidden states and attention), then evaluate both.

Pipeline: check the config -> teacher -> student (+ layer map) -> data (labelled + transfer)
-> the teacher's logits, once (cached) -> train (resumable, DDP) -> save -> evaluate.

Inputs: SQuAD v1.1 JSON (question-answering); GLUE-style TSV with a header (STS-B: sentence1,
sentence2, score -> regression; SST-2: sentence, label -> sequence-classification).
`--transfer-file` is unlabelled transfer data in the same format: only the teacher's soft labels
are used on it, its gold answers/labels are dropped on read and never reach the loss.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.checkpoint import prepare_run_dir, resume_path
from distill.config import DEVICE, save_run_config
from distill.task_model import _as_feature, collate_task, evaluate_task, forward_task, task_losses
from distill.task_train import cached_teacher_scores, fingerprint, teacher_logits, train_task
from pocketbert import argtypes as at
from pocketbert.common import UsageError, git_revision, write_json
from pocketbert.knobs import check_knobs, knob
from pocketbert.outputs import atomic_output_dir
from pocketbert.families import family_of
from pocketbert.tasks import all_tasks

# `distill task --task` name -> the registry task whose head it trains (regression: a one-label
# sequence-classification head)
TASK_HEADS = {mode: t.name for t in all_tasks().values() for mode in t.distill_modes}
TASKS = tuple(TASK_HEADS)


@dataclass
class TaskConfig:
    task: str = knob("sequence-classification", rule=at.choice(TASKS, "task"))  # question-answering | sequence-classification | regression
    teacher: str = knob("bert-tiny", rule=at.model)  # a fine-tuned BERT-family teacher for the task (folder, hub id, preset)
    train_file: str = knob("", rule=at.as_text(at.existing_file))  # SQuAD v1.1 JSON or GLUE-style TSV with a header row (gold labels used)
    # unlabelled transfer data, same format: teacher soft labels only
    transfer_file: str | None = knob(None, rule=at.as_text(at.existing_file), none="none")
    eval_file: str | None = knob(None, rule=at.as_text(at.existing_file), none="none")  # same format; scored for teacher and student after training
    # a distilled student folder to start from
    student: str | None = knob(None, rule=at.as_text(at.existing_dir), none="copy teacher layers")
    # when copying from the teacher: which layers
    student_layers: str | None = knob(None, rule=at.layer_map, none="one of two")
    tokenizer: str | None = knob(None, rule=at.tokenizer, none="the teacher's")
    alpha_task: float = knob(1.0, rule=at.nonneg_float)  # weight of the task loss on the gold labels (train file only)
    alpha_kd: float = knob(1.0, rule=at.nonneg_float)  # weight of KL (QA, classification) / MSE (regression) to the teacher
    # intermediate layers: MSE of mapped hidden states (0: off; needs the teacher each step)
    alpha_hidden: float = knob(0.0, rule=at.nonneg_float, why="off; the teacher then runs every step")
    alpha_attn: float = knob(0.0, rule=at.nonneg_float, why="off")  # intermediate layers: KL of mapped attention distributions
    # student layer -> teacher layer matched, e.g. "2,4,6"
    layer_map: str | None = knob(None, rule=at.layer_map, none="uniform, last to last, e.g. 2,4,6 for 3 of 6")
    temperature: float = knob(2.0, rule=at.positive_float)  # softening for the KL term (scaled by T^2)
    max_len: int = knob(384, rule=at.int_range(8, 4096), why="SQuAD's standard window")  # QA windows / pair length
    doc_stride: int = knob(128, rule=at.positive_int)  # overlap between QA windows of a long context (< max_len)
    batch_size: int = knob(16, rule=at.positive_int)  # windows / examples per micro-batch per process (length-grouped)
    grad_accum: int = knob(1, rule=at.positive_int)  # micro-batches per optimizer step
    epochs: int = knob(2, rule=at.positive_int)  # passes over the training data; used when max_steps is 0
    max_steps: int = knob(0, rule=at.nonneg_int, why="no cap: run --epochs")  # stop after this many steps
    lr: float = knob(5e-5, rule=at.positive_float, why="a fine-tuning scale")  # AdamW peak learning rate
    weight_decay: float = knob(0.01, rule=at.nonneg_float)  # standard fine-tuning decay (not on biases and LayerNorms)
    # fraction of steps of linear warm-up, then linear decay
    warmup: float = knob(0.1, rule=at.float_range(0.0, 1.0, hi_open=True))
    max_grad_norm: float = knob(1.0, rule=at.positive_float)  # gradient clipping
    seed: int = knob(42, rule=at.nonneg_int)  # init, order, dropout
    # folder for the frozen teacher's logits and scores
    teacher_cache: str | None = knob(None, rule=at.as_text(at.output_root), none="OUT/teacher-cache")
    save_every: int = knob(100, rule=at.positive_int)  # optimizer steps between checkpoints (and one at the end)
    keep_checkpoints: int = knob(2, rule=at.nonneg_int)  # older checkpoints pruned once a newer one is complete (0: keep all)
    device: str = knob("auto", rule=DEVICE)
    out: str = knob("runs/distill-task", rule=at.as_text(at.output_dir))  # student/ (HF folder), metrics.json, config.json, checkpoints/
    progress: bool = True  # tqdm bars

    def validate(self) -> None:
        """Raise a one-line UsageError naming the flag of the first bad knob: each field by its flag's
        rule, then the rules between fields."""
        check_knobs(self)
        if not self.train_file:
            raise UsageError("task distillation needs --train-file")
        if not (self.alpha_task or self.alpha_kd or self.alpha_hidden or self.alpha_attn):
            raise UsageError("every loss weight is 0 (--alpha-task, --alpha-kd, --alpha-hidden, "
                             "--alpha-attn): nothing to train on")
        if self.task == "question-answering" and self.doc_stride >= self.max_len:
            raise UsageError(f"--doc-stride must be less than --max-len ({self.max_len}), "
                             f"got {self.doc_stride}")
        if self.layer_map and not all(x.strip().isdigit() for x in str(self.layer_map).split(",")):
            raise UsageError(f"--layer-map must be comma-separated teacher layers (1-based), got "
                             f"'{self.layer_map}'")
        if self.layer_map and not (self.alpha_hidden or self.alpha_attn):
            raise UsageError("--layer-map is used only by intermediate-layer matching: set "
                             "--alpha-hidden and/or --alpha-attn too")

    @property
    def matches_layers(self) -> bool:
        """Intermediate-layer terms on: the teacher runs every step (no logit cache)."""
        return bool(self.alpha_hidden or self.alpha_attn)


def distill_task(cfg: TaskConfig, resume: str | None = None, overwrite: bool = False,
                 on_step=()) -> dict[str, Any]:
    """Task distillation pipeline; returns the metrics (also written to OUT/metrics.json).
    `resume`: "latest" or a ckpt-*.pt of OUT (continues exactly); `on_step`: hooks given a
    `distill.loop.StepEnd` after every optimizer step."""
    import shutil

    import torch

    from distill.runtime import setup_run_context

    cfg.validate()
    ctx = setup_run_context(cfg.device, "off")
    out, ckdir = Path(cfg.out), Path(cfg.out) / "checkpoints"
    created = not resume and not out.exists()
    try:
        # 1. the frozen teacher, and which of its layers each student layer matches
        torch.manual_seed(cfg.seed)
        teacher, tok, teacher_type = load_task_teacher(cfg)
        layer_map = resolve_layer_map(cfg.layer_map, _student_layer_count(cfg, teacher),
                                      teacher.config.num_hidden_layers) if cfg.matches_layers else None
        # 2. data: gold-labelled windows, then transfer windows (soft labels only); the student
        data = load_train_data(cfg, tok, teacher)
        student, copied = build_task_student(cfg, teacher, teacher_type, data.get("num_labels"))
        start_ckpt = None
        if ctx.is_main:
            start_ckpt = prepare_run_dir(out, ckdir, resume, overwrite, stale=("metrics.json",))
        ctx.barrier()
        if resume and not ctx.is_main:
            start_ckpt = resume_path(out, ckdir, resume)
        run_info = {"student_layers": copied, "layer_map": layer_map, "world_size": ctx.world_size,
                    "train_windows": data["n_labelled"], "transfer_windows": data["n_transfer"]}
        if ctx.is_main and not resume:  # on resume the saved config stays authoritative
            save_run_config(cfg, out, run_info)
        # 3. the teacher's logits, computed once when nothing else of it is needed
        cached = None
        if not cfg.matches_layers and cfg.alpha_kd:
            cached = teacher_logits(cfg, teacher, teacher_type, data["features"], ctx)
        # 4. train
        history = train_task(cfg, teacher, teacher_type, student, data, cached, layer_map, ctx,
                             ckdir, start_ckpt, fingerprint(cfg, teacher, data, copied, layer_map, ctx),
                             on_step=on_step)
    except BaseException:
        if created and ctx.is_main and out.exists() and not any(ckdir.glob("ckpt-*")):
            shutil.rmtree(out, ignore_errors=True)  # a failed start leaves nothing behind
        raise
    metrics: dict[str, Any] = {"task": cfg.task, "train_seconds": history.pop("seconds"),
                               "train_examples": data["n_examples"], "transfer_examples": data["n_transfer_examples"],
                               "final_loss": history["final"], "train": history, **run_info}
    if ctx.is_main:
        # 5. save the student as a standard Hugging Face folder, then score teacher and student
        with atomic_output_dir(out / "student", overwrite=True) as tmp:
            student.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            write_json(Path(tmp) / "distill_info.json",
                       dict(run_info, teacher=cfg.teacher, task=cfg.task, git_revision=git_revision()))
        if cfg.eval_file:
            ev = load_task_data(cfg, cfg.eval_file, tok, train=False, label_map=data.get("label_map"))
            metrics["teacher"] = cached_teacher_scores(cfg, teacher, teacher_type, ev)
            metrics["student"] = evaluate_task(cfg, student, "distilbert", ev, desc="scoring student")
            if cfg.task == "question-answering" and metrics["teacher"].get("f1"):
                metrics["f1_retention_pct"] = 100.0 * metrics["student"]["f1"] / metrics["teacher"]["f1"]
        write_json(out / "metrics.json", metrics)
    ctx.barrier()
    ctx.close()
    return metrics


# ----------------------------------------------------------------------------- models

def _auto_class(task: str):
    """Regression is a one-label sequence-classification head."""
    from pocketbert.models import auto_class

    return auto_class(TASK_HEADS[task])


def _student_layer_count(cfg: TaskConfig, teacher) -> int:
    """Layers the student will have (from --student's config, or the layers it copies)."""
    from distill.student import parse_layers

    if cfg.student:
        path = Path(cfg.student) / "config.json"
        if not path.exists():
            raise UsageError(f"--student {cfg.student} is not a Hugging Face model folder")
        return int(json.loads(path.read_text()).get("n_layers", 0))
    return len(parse_layers(cfg.student_layers, teacher.config.num_hidden_layers))


def load_task_teacher(cfg: TaskConfig):
    """The fine-tuned teacher (frozen, eval) and its tokenizer."""
    from pocketbert.models import PRESETS, load_model, preset_config, preset_tokenizer

    if cfg.teacher in PRESETS:  # tests: random teacher from a preset config
        import torch

        num_labels = 1 if cfg.task == "regression" else 2
        kw = {} if cfg.task == "question-answering" else {"num_labels": num_labels}
        torch.manual_seed(cfg.seed)
        model = _auto_class(cfg.task).from_config(preset_config(cfg.teacher, **kw))
        tok = preset_tokenizer(cfg.teacher, cfg.tokenizer)
        mtype = model.config.model_type
    else:
        loaded = load_model(cfg.teacher, TASK_HEADS[cfg.task], tokenizer=cfg.tokenizer)
        model, tok, mtype = loaded.model, loaded.tokenizer, loaded.model_type
        if cfg.task == "regression" and model.config.num_labels != 1:
            raise UsageError(f"teacher {cfg.teacher} has {model.config.num_labels} labels: a "
                             "regression teacher has 1")
    if cfg.matches_layers:  # attention probabilities are returned by the eager kernels only
        model.config._attn_implementation = "eager"
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tok, mtype


def build_task_student(cfg: TaskConfig, teacher, teacher_type: str,
                       num_labels: int | None) -> tuple[Any, list[int] | None]:
    """A DistilBERT task model and the teacher layers it copied (None from --student): from a
    distilled student folder, or by copying teacher layers (QA: the teacher's span head too;
    classifiers get a fresh head since BERT's pooler differs)."""
    import torch
    from transformers import DistilBertForQuestionAnswering, DistilBertForSequenceClassification

    from distill.student import Teacher, map_teacher_weights, parse_layers, student_config
    family = family_of(teacher_type)
    if family.distilbert_weights is None and not cfg.student:
        raise UsageError(f"task distillation builds DistilBERT students from bert or distilbert "
                         f"teachers: a {teacher_type} teacher needs --student (a distilled folder)")

    n_labels = 1 if cfg.task == "regression" else (num_labels or teacher.config.num_labels)
    extra: dict[str, Any] = {} if cfg.task == "question-answering" else {"num_labels": n_labels}
    if cfg.task == "regression":
        extra["problem_type"] = "regression"
    attn = {"attn_implementation": "eager"} if cfg.matches_layers else {}
    if cfg.student:
        path = Path(cfg.student)
        if not (path / "config.json").exists():
            raise UsageError(f"--student {path} is not a Hugging Face model folder")
        if json.loads((path / "config.json").read_text()).get("model_type") != "distilbert":
            raise UsageError(f"--student {path} is not a DistilBERT model")
        torch.manual_seed(cfg.seed)
        return _auto_class(cfg.task).from_pretrained(path, dtype=torch.float32, **extra, **attn), None
    encoder = teacher.base_model  # .bert / .distilbert
    enc_teacher = Teacher(encoder, None, teacher_type, False, cfg.teacher)
    layers = parse_layers(cfg.student_layers, enc_teacher.num_layers)
    config = student_config(enc_teacher, layers)
    for k, v in extra.items():
        setattr(config, k, v)
    if attn:
        config._attn_implementation = "eager"
    torch.manual_seed(cfg.seed)
    cls = DistilBertForQuestionAnswering if cfg.task == "question-answering" else \
        DistilBertForSequenceClassification
    student = cls(config)
    student.distilbert.load_state_dict(map_teacher_weights(enc_teacher, layers))
    if cfg.task == "question-answering":
        student.qa_outputs.load_state_dict(teacher.qa_outputs.state_dict())
    return student, layers


def resolve_layer_map(text: str | None, student_layers: int, teacher_layers: int) -> list[int]:
    """`--layer-map`: for each student layer 1..M, the teacher layer 1..N whose output it matches
    (hidden states; attention of the same layer). Default: uniform, m -> ceil(m*N/M), so the last
    student layer matches the teacher's last (TinyBERT's map). One-line UsageError when bad."""
    if text in (None, ""):
        return [math.ceil(m * teacher_layers / student_layers) for m in range(1, student_layers + 1)]
    try:
        out = [int(x) for x in str(text).split(",") if x.strip() != ""]
    except ValueError:
        raise UsageError(f"--layer-map must be comma-separated teacher layers (1..{teacher_layers}), "
                         f"got '{text}'") from None
    if len(out) != student_layers:
        raise UsageError(f"--layer-map has {len(out)} entries but the student has {student_layers} "
                         f"layers: give one teacher layer (1..{teacher_layers}) per student layer")
    bad = [x for x in out if not 1 <= x <= teacher_layers]
    if bad:
        raise UsageError(f"--layer-map {bad} out of range: teacher layers are 1..{teacher_layers}")
    if sorted(set(out)) != out:
        raise UsageError(f"--layer-map must be strictly increasing, got {out}")
    return out


# ----------------------------------------------------------------------------- data

def load_train_data(cfg: TaskConfig, tok, teacher) -> dict[str, Any]:
    """Training features: the train file's (gold labels used) then the transfer file's, whose
    gold is dropped on read. Each feature dict carries `labelled`."""
    data = load_task_data(cfg, cfg.train_file, tok, train=True, teacher=teacher)
    feats = [dict(_as_feature(f), labelled=True) for f in data["features"]]
    data["n_labelled"], data["n_transfer"], data["n_transfer_examples"] = len(feats), 0, 0
    if cfg.transfer_file:
        tr = load_task_data(cfg, cfg.transfer_file, tok, train=True, teacher=teacher, unlabelled=True,
                            label_map=data.get("label_map"))
        feats += [dict(_as_feature(f), labelled=False) for f in tr["features"]]
        data["n_transfer"], data["n_transfer_examples"] = len(tr["features"]), tr["n_examples"]
    data["features"] = feats
    return data


def load_task_data(cfg: TaskConfig, path: str, tok, train: bool, label_map=None,
                   teacher=None, unlabelled: bool = False) -> dict[str, Any]:
    """Tokenized features (lists, padded per batch) plus what evaluation needs. `unlabelled`:
    gold answers / labels are dropped on read (transfer data: the teacher labels it)."""
    from pocketbert import glue, squad

    flag = "--transfer-file" if unlabelled else ("--train-file" if train else "--eval-file")
    try:
        if cfg.task == "question-answering":
            questions = squad.read_squad(path, answers=not unlabelled)
            wins = squad.windows(tok, questions, cfg.max_len, cfg.doc_stride, labels=train and not unlabelled)
            return {"features": wins, "n_examples": len(questions), "examples": {q.id: q for q in questions}}
        rows = glue.read_tsv(path, need_labels=not unlabelled)
    except UsageError as e:
        raise UsageError(f"{flag}: {e}") from None
    if unlabelled:
        labels: list[Any] = [0.0 if cfg.task == "regression" else 0] * len(rows.ids)
    elif cfg.task == "regression":
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



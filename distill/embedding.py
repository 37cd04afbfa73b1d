"""Embedding distillation (feature-extraction): a student made of every other teacher layer (the
paper's init) trained so that its pooled, normalised sentence embedding matches the teacher's on
unlabelled text: loss = MSE(student, teacher) · dim + (1 - cosine), the student pooled exactly like
its teacher (the sentence-transformers folder's pooling, pocketbert.pooling).

Pipeline: the teacher (frozen) -> the student (layers copied) -> the texts -> the teacher's
embeddings, once -> train -> save a sentence-transformers folder (so `pocketbert export --task
feature-extraction` builds the same pooling) -> cosine to the teacher on held-out texts, before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.student import Teacher, build_student, parse_layers
from pocketbert.common import UsageError, write_json
from pocketbert.outputs import atomic_output_dir
from pocketbert.texts import read_passages


@dataclass
class EmbeddingConfig:
    teacher: str  # a sentence-transformers or Hugging Face folder (or preset), loaded for feature-extraction
    train_file: str  # unlabelled text: one passage per line, a GLUE-style TSV or a SQuAD JSON's contexts
    out: str  # the student's sentence-transformers folder
    student_layers: str | None = None  # teacher layers to copy (default: every other one)
    heldout: int = 64  # last passages kept out of training, scored before and after
    max_len: int = 128  # tokens per passage (sentence embeddings: sentences)
    batch_size: int = 16
    epochs: int = 1
    max_steps: int = 0  # 0: run `epochs`
    lr: float = 1e-4  # AdamW (a student initialised from the teacher: a fine-tuning scale)
    seed: int = 0
    tokenizer: str | None = None


def _embed(model, tok, texts: list[str], pooling, max_len: int):
    from pocketbert.pooling import pool_tensor

    enc = tok(texts, truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    return pool_tensor(out.last_hidden_state, enc["attention_mask"], pooling)  # (bs, hidden)


def _mean_cosine(student, teacher_emb, tok, texts, pooling, max_len: int) -> float:
    import torch

    with torch.no_grad():
        got = _embed(student.eval(), tok, texts, pooling, max_len)
    return float(torch.nn.functional.cosine_similarity(got, teacher_emb, dim=-1).mean())


def distill_embeddings(cfg: EmbeddingConfig) -> dict[str, Any]:
    import torch

    from pocketbert.models import load_model

    teacher = load_model(cfg.teacher, "feature-extraction", tokenizer=cfg.tokenizer, seed=cfg.seed)
    texts = read_passages(cfg.train_file)
    if len(texts) <= cfg.heldout:
        raise UsageError(f"{cfg.train_file} has {len(texts)} passages: need more than the {cfg.heldout} held out")
    train, heldout = texts[:-cfg.heldout], texts[-cfg.heldout:]
    pooling, tok = teacher.pooling, teacher.tokenizer
    for p in teacher.model.parameters():
        p.requires_grad_(False)
    layers = parse_layers(cfg.student_layers, int(teacher.model.config.num_hidden_layers))
    student = build_student(Teacher(teacher.model, tok, teacher.model_type, False, cfg.teacher), layers, seed=cfg.seed)

    with torch.no_grad():  # the teacher's embeddings, once
        target = torch.cat([_embed(teacher.model, tok, train[i:i + cfg.batch_size], pooling, cfg.max_len)
                            for i in range(0, len(train), cfg.batch_size)])
        held_target = _embed(teacher.model, tok, heldout, pooling, cfg.max_len)
    before = _mean_cosine(student, held_target, tok, heldout, pooling, cfg.max_len)

    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr)
    steps, losses = 0, []
    for _ in range(cfg.epochs):
        order = torch.randperm(len(train)).tolist()
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            student.train()
            got = _embed(student, tok, [train[j] for j in idx], pooling, cfg.max_len)
            want = target[idx]
            loss = torch.nn.functional.mse_loss(got, want) * got.shape[-1] + \
                (1 - torch.nn.functional.cosine_similarity(got, want, dim=-1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
            steps += 1
            if cfg.max_steps and steps >= cfg.max_steps:
                break
        if cfg.max_steps and steps >= cfg.max_steps:
            break
    after = _mean_cosine(student, held_target, tok, heldout, pooling, cfg.max_len)
    metrics = {"steps": steps, "first_loss": losses[0], "final_loss": losses[-1], "student_layers": layers,
               "heldout_passages": len(heldout), "heldout_cosine_to_teacher": {"before": before, "after": after},
               "pooling": pooling.to_dict()}
    save_st_folder(student, tok, pooling, Path(cfg.out), metrics)
    return metrics


def save_st_folder(model, tok, pooling, out: Path, metrics: dict) -> None:
    """The student as a sentence-transformers folder: weights and tokenizer at the top, the pooling in
    1_Pooling/config.json, Normalize listed in modules.json when the teacher's embedding is normalised."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if pooling.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    with atomic_output_dir(out, overwrite=True) as tmp:
        tmp = Path(tmp)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_json(tmp / "modules.json", modules)
        (tmp / "1_Pooling").mkdir()
        write_json(tmp / "1_Pooling" / "config.json",
                   {"word_embedding_dimension": int(model.config.hidden_size),
                    "pooling_mode_cls_token": pooling.mode == "cls", "pooling_mode_mean_tokens": pooling.mode == "mean"})
        write_json(tmp / "distill_metrics.json", metrics)

"""Held-out evaluation of a pre-training distillation: how close the student is to its teacher."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def evaluate_mlm(teacher, student, path: str, cfg, max_sequences: int = 2000,
                 seed: int = 1234) -> dict[str, Any]:
    """Held-out text, same fixed masking for both: MLM accuracy (teacher vs student, when there
    are MLM heads), the KL from the teacher's to the student's masked-token distribution (T = 1),
    and the mean token cosine between their last hidden states. `cfg`: a DistillConfig."""
    import tempfile

    import torch

    from distill.data import Corpus, build_corpus, collate
    from distill.losses import cosine_loss, kd_kl_loss
    from distill.masking import mask_tokens
    from distill.objective import StudentForward, teacher_forward

    tok = teacher.tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Corpus(build_corpus([Path(path)], tok, Path(tmp), min(cfg.max_len, 256), cfg.min_len,
                                     progress=False))
        probs = torch.ones(student.config.vocab_size)
        probs[tok.all_special_ids] = 0
        gen = torch.Generator().manual_seed(seed)
        fwd = StudentForward(student).eval()
        has_head = getattr(student, "vocab_projector", None) is not None
        hits = {"teacher": 0, "student": 0}
        n_pred, kl_sum, cos_sum, n_tok = 0, 0.0, 0.0, 0
        device = next(student.parameters()).device
        idx = list(range(min(len(corpus), max_sequences)))
        for i in range(0, len(idx), 16):
            ids, att = collate(corpus, idx[i:i + 16], tok.pad_token_id)  # (bs, seq) x2
            ids, labels = mask_tokens(ids, att, probs, tok.mask_token_id, student.config.vocab_size, gen)
            sel = labels != -100  # (bs, seq)
            ids, att, sel, labels = ids.to(device), att.to(device), sel.to(device), labels.to(device)
            with torch.no_grad():
                t_h, t_l = teacher_forward(teacher, ids, att, sel)
                s_h, s_l = fwd(ids, att, sel if has_head else None)
            if t_l is not None and s_l is not None and int(sel.sum()):
                n = int(sel.sum())
                hits["teacher"] += int((t_l.argmax(-1) == labels[sel]).sum())
                hits["student"] += int((s_l.argmax(-1) == labels[sel]).sum())
                kl_sum += float(kd_kl_loss(s_l, t_l, 1.0)) * n
                n_pred += n
            n = int(att.sum())
            cos_sum += (1 - float(cosine_loss(s_h, t_h, att))) * n
            n_tok += n
    res = {"sequences": len(idx), "hidden_cosine": cos_sum / max(n_tok, 1)}
    if n_pred:
        res.update(masked_tokens=n_pred, mlm_accuracy_teacher=hits["teacher"] / n_pred,
                   mlm_accuracy_student=hits["student"] / n_pred, mlm_kl_to_teacher=kl_sum / n_pred)
    return res

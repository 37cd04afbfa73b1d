"""What task distillation does with a batch: collate windows/examples, run a task model, the task
and distillation losses, and scoring (SQuAD EM/F1, Pearson/Spearman, accuracy). Used by the
pipeline (`distill.task`) and the training loop (`distill.task_train`)."""

from __future__ import annotations

from typing import Any

from pocketbert.families import family_of

def _as_feature(f) -> dict[str, Any]:
    """A SQuAD window or a TSV feature as the dict collate reads."""
    from pocketbert.squad import Window

    if isinstance(f, Window):
        n = len(f.inputs["input_ids"])
        return {"input_ids": f.inputs["input_ids"], "token_type_ids": f.inputs.get("token_type_ids", [0] * n),
                "start": f.start, "end": f.end}
    return f


def collate_task(feats: list[dict[str, Any]], pad_id: int, task: str):
    """Pad a batch. -> dict of tensors: input_ids/attention_mask/token_type_ids (bs, seq), labels,
    and `labelled` (bs,) bool: which rows' gold labels the task loss may read."""
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
    batch = {"input_ids": ids, "attention_mask": att, "token_type_ids": tt,
             "labelled": torch.tensor([bool(f.get("labelled", True)) for f in feats])}  # (bs,)
    if task == "question-answering":
        batch["start"] = torch.tensor([f["start"] for f in feats])  # (bs,)
        batch["end"] = torch.tensor([f["end"] for f in feats])  # (bs,)
    else:
        dtype = torch.float32 if task == "regression" else torch.long
        batch["label"] = torch.tensor([f["label"] for f in feats], dtype=dtype)  # (bs,)
    return batch


def forward_task(model, model_type: str, batch, task: str, internals: bool = False):
    """Logits of a task model: QA -> (start, end) each (bs, seq); else (bs, labels). With
    `internals`, also (hidden states, attentions) of every layer."""
    kw = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    config = getattr(model, "module", model).config  # a DDP wrapper holds the model as .module
    if family_of(model_type).uses_token_type_ids(config):
        kw["token_type_ids"] = batch["token_type_ids"]
    if internals:
        kw.update(output_hidden_states=True, output_attentions=True)
    out = model(**kw)
    if task == "question-answering":
        pad = batch["attention_mask"] == 0  # (bs, seq)
        logits = (out.start_logits.masked_fill(pad, -1e4), out.end_logits.masked_fill(pad, -1e4))
    else:
        logits = (out.logits,)
    return (logits, (out.hidden_states, out.attentions)) if internals else logits


def task_losses(task: str, s_out, t_out, batch, temperature: float) -> tuple[Any, Any]:
    """(task loss on the rows with gold labels, distillation loss on every row) for one batch."""
    import torch.nn.functional as F

    from distill.losses import _zero, kd_kl_loss

    keep = batch.get("labelled")
    sel = (lambda x: x) if keep is None or bool(keep.all()) else (lambda x: x[keep])
    if task == "question-answering":
        ce = (F.cross_entropy(sel(s_out[0]), sel(batch["start"])) +
              F.cross_entropy(sel(s_out[1]), sel(batch["end"]))) / 2 if keep is None or keep.any() \
            else _zero(s_out[0])
        kd = (kd_kl_loss(s_out[0], t_out[0], temperature) + kd_kl_loss(s_out[1], t_out[1], temperature)) / 2
        return ce, kd
    if task == "regression":
        pred, tpred = s_out[0].squeeze(-1), t_out[0].squeeze(-1)  # (bs,)
        ce = F.mse_loss(sel(pred), sel(batch["label"])) if keep is None or keep.any() else _zero(pred)
        return ce, F.mse_loss(pred, tpred)
    ce = F.cross_entropy(sel(s_out[0]), sel(batch["label"])) if keep is None or keep.any() \
        else _zero(s_out[0])
    return ce, kd_kl_loss(s_out[0], t_out[0], temperature)



# ----------------------------------------------------------------------------- evaluate

def evaluate_task(cfg: TaskConfig, model, model_type: str, data, batch_size: int = 32,
                  desc: str = "scoring") -> dict[str, Any]:
    """SQuAD EM/F1, STS-B Pearson/Spearman, or accuracy. Windows run length-sorted (little
    padding), with a progress bar."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from pocketbert import glue, squad

    feats = data["features"]
    order = np.argsort([len(_as_feature(f)["input_ids"]) for f in feats], kind="stable")
    outs: list[Any] = [None] * len(feats)
    was_training = model.training
    model.eval()
    with torch.no_grad(), tqdm(total=len(feats), desc=desc, unit="window", disable=not cfg.progress) as bar:
        for i in range(0, len(feats), batch_size):
            idx = order[i:i + batch_size]
            batch = collate_task([feats[j] for j in idx], 0, cfg.task)
            o = forward_task(model, model_type, batch, cfg.task)
            for r, j in enumerate(idx):
                n = int(batch["attention_mask"][r].sum())
                outs[j] = [x[r, :n] if cfg.task == "question-answering" else x[r] for x in o]
            bar.update(len(idx))
    model.train(was_training)
    if cfg.task == "question-answering":
        preds = squad.predictions(feats, [(s.numpy(), e.numpy()) for s, e in outs], data["examples"])
        golds = {qid: q.gold_texts for qid, q in data["examples"].items()}
        return squad.scores(preds, golds)
    if cfg.task == "regression":
        return glue.pearson_spearman([float(o[0]) for o in outs], [f["label"] for f in feats])
    return glue.accuracy([int(o[0].argmax()) for o in outs], [f["label"] for f in feats])

"""The task-metric gate for low-precision exports of trained models (SQuAD F1 for QA, accuracy
on a GLUE-style TSV for sequence classification).

Logit SNR says a quantized export is numerically close; it does not say the app still answers
well. On a trained QA model int8 keeps F1 within a few points while changing many exact spans
(plain int8 ONNX kept 56% of answers identical at -2.5 F1 here), so an agreement bound would reject
good exports and a loose logit bound would pass bad ones. This gate runs the PyTorch fp32 model
and the export over the same SQuAD questions and fails when F1 drops more than `max_f1_drop`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from export.sentence_gates import stsb_embedding_gate, stsb_items, text_items, token_agreement_gate
from pocketbert import glue, squad
from pocketbert.common import UsageError, console_stderr
from pocketbert.inputs import pad_inputs
from pocketbert.texts import read_passages


EVAL_KINDS = {"squad": "question-answering", "glue": "sequence-classification", "stsb": "feature-extraction",
              "text": "token-classification"}
# A SQuAD question makes ~1.1 windows at 384/128 and its longest contexts (~700 tokens) 3-4 at 128; more
# than this per question means a --seq-len too short for the data: refused, not scored for hours.
MAX_WINDOWS_PER_QUESTION = 8


def max_metric_drop(cfg, kind: str) -> float:
    """The bound of a task metric in an export config: F1 points (squad), accuracy points (glue),
    Spearman points (stsb); text has no metric to drop (0)."""
    return {"squad": cfg.max_f1_drop, "glue": cfg.max_accuracy_drop, "stsb": cfg.max_spearman_drop}.get(kind, 0.0)


def min_agreement(cfg, kind: str) -> float:
    """The agreement bound with fp32: identical answers (squad, glue), mean cosine of the embeddings
    (stsb), identical word labels (text)."""
    return {"stsb": cfg.min_mean_cosine, "text": cfg.min_label_agreement}.get(kind, cfg.min_identical_answers)


def guided_targets(cfg, kind: str) -> tuple[float, float]:
    """(max metric drop, min identical answers) guided int8 searches for: the tighter of its own aim
    and the export gate's bounds."""
    return (min(max_metric_drop(cfg, kind), cfg.int8_guided_max_drop),
            max(cfg.min_identical_answers, cfg.int8_guided_min_identical))


def parse_eval_spec(spec: str) -> tuple[str, Path]:
    """'squad:PATH' -> ('squad', PATH), 'glue:PATH' -> ('glue', PATH), stsb:, text:; the data must exist."""
    kind, _, path = spec.partition(":")
    if kind not in EVAL_KINDS or not path:
        raise UsageError(f"--eval-data {spec!r}: expected squad:PATH (SQuAD v1.1 JSON), "
                         "glue:PATH (GLUE-style TSV with a label column), stsb:PATH (STS-B TSV, "
                         "feature-extraction) or text:PATH (text, TSV or SQuAD JSON, token-classification)")
    if not Path(path).is_file():
        raise UsageError(f"--eval-data: {path} not found")
    return kind, Path(path)


def check_eval_data(spec: str) -> None:
    """Read and validate the data of a spec now (CLI flag validation)."""
    kind, path = parse_eval_spec(spec)
    if kind == "squad":
        squad.read_squad(path)
    elif kind == "text":
        read_passages(path)
    elif kind == "stsb":
        glue.float_labels(glue.read_tsv(path, need_labels=True))
    else:
        glue.read_tsv(path, need_labels=True)


@dataclass
class TaskData:
    """Eval data ready to score: SQuAD windows + questions, GLUE rows encoded + gold labels, STS-B
    sentences encoded + pairs and gold scores, or passages encoded + their word ids."""

    kind: str
    path: Path
    items: list  # squad: Window; glue, stsb, text: {input name: int64 (1, len)}
    answers: dict  # squad: questions by id; glue: {"labels"}; stsb: {"pairs", "gold"}; text: {"word_ids"}

    @property
    def size(self) -> int:
        return {"squad": len(self.answers), "stsb": len(self.answers.get("pairs", ()))}.get(self.kind, len(self.items))

    @property
    def unit(self) -> str:
        return {"squad": "questions", "text": "passages"}.get(self.kind, "rows")

    def probe_feeds(self, input_names: list[str], n: int) -> list[dict[str, np.ndarray]]:
        items = self.items[:n]
        return [w.arrays(input_names) for w in items] if self.kind == "squad" else items

    def score(self, input_names, reference, runner, pad_to, max_drop: float, min_identical: float,
              cache: dict, progress: bool = True) -> dict:
        if self.kind == "squad":
            return squad_f1_gate(self.items, self.answers, input_names, reference, runner, pad_to,
                                 max_drop, progress=progress, cache=cache,
                                 min_identical=min_identical)
        if self.kind == "stsb":
            return stsb_embedding_gate(self.items, self.answers, reference, runner, pad_to, max_drop,
                                       min_identical, progress=progress, cache=cache)
        if self.kind == "text":
            return token_agreement_gate(self.items, self.answers, reference, runner, pad_to, min_identical,
                                        progress=progress, cache=cache)
        return glue_accuracy_gate(self.items, self.answers["labels"], reference, runner, pad_to,
                                  max_drop, progress=progress, cache=cache,
                                  min_identical=min_identical)


def load_task_data(spec: str, task: str, tokenizer, seq_len: int, n: int,
                   label2id: dict | None = None, flag: str = "--eval-data") -> TaskData:
    """The first `n` questions (SQuAD) or rows (GLUE TSV) of a spec, for `task`'s model."""
    kind, path = parse_eval_spec(spec)
    if EVAL_KINDS[kind] != task:
        raise UsageError(f"{flag} {kind}:PATH gates {EVAL_KINDS[kind]} exports, not {task}")
    if kind == "squad":
        wins, questions = squad_windows(path, tokenizer, seq_len, n, flag)
        return TaskData(kind, path, wins, questions)
    if kind in ("stsb", "text"):
        return TaskData(kind, path, *(stsb_items if kind == "stsb" else text_items)(path, tokenizer, seq_len, n))
    feeds, labels = glue_rows(path, tokenizer, seq_len, n, label2id or {})
    return TaskData(kind, path, feeds, {"labels": labels})


def glue_rows(path: Path, tokenizer, seq_len: int, n: int, label2id: dict):
    """The first `n` rows of a GLUE-style TSV as model feeds (truncated to `seq_len`) and their
    gold class indices (integer labels, or names the model's config maps to indices)."""
    rows = glue.read_tsv(path, need_labels=True)
    labels = []
    for i, x in enumerate(rows.labels[:n]):
        if x.strip().lstrip("-").isdigit():
            labels.append(int(x))
        elif x in label2id:
            labels.append(int(label2id[x]))
        else:
            raise UsageError(f"{path}, row {i + 1}: label {x!r} is neither a class index nor one of "
                             f"the model's labels ({', '.join(map(str, label2id)) or 'none'})")
    second = rows.second[:n] if rows.second else None
    enc = tokenizer(rows.first[:n], second, truncation=True, max_length=seq_len)
    feeds = [{k: np.asarray([enc[k][i]], dtype=np.int64) for k in enc.keys()}
             for i in range(len(labels))]
    return feeds, labels


def glue_accuracy_gate(feeds, labels: list[int], reference: Callable, runner: Callable,
                       pad_to: int | None, max_accuracy_drop: float, progress: bool = True,
                       cache: dict | None = None, min_identical: float = 0.0) -> dict:
    """Accuracy (points) of the fp32 reference and the export on the same rows; judge the drop
    and the share of predicted classes identical to the reference's."""
    from tqdm import tqdm

    def classes(run, pad, desc):
        out = []
        for f in tqdm(feeds, desc=desc, unit="row", disable=not progress, leave=False, file=console_stderr()):
            (logits,) = run(pad_inputs(f, pad) if pad else f)[:1]  # (1, num_labels)
            out.append(int(np.argmax(logits[0])))
        return out

    cache = {} if cache is None else cache
    if "reference" not in cache:
        cache["reference"] = classes(reference, None, "fp32 eval")
    ref, got = cache["reference"], classes(runner, pad_to, "export eval")
    ref_acc = 100 * glue.accuracy(ref, labels)["accuracy"]
    got_acc = 100 * glue.accuracy(got, labels)["accuracy"]
    identical = float(np.mean([a == b for a, b in zip(ref, got)]))
    drop = ref_acc - got_acc
    result = {"metric": "accuracy", "n_rows": len(labels),
              "fp32_pytorch": {"accuracy": ref_acc}, "export": {"accuracy": got_acc},
              "accuracy_drop": drop, "identical_answers": identical,
              "max_accuracy_drop": max_accuracy_drop, "min_identical_answers": min_identical}
    return _judge(result, drop, max_accuracy_drop, identical, min_identical,
                  f"accuracy {got_acc:.2f} vs fp32 {ref_acc:.2f}")


def _judge(result: dict, drop: float, max_drop: float, identical: float, min_identical: float,
           what: str) -> dict:
    failed = []
    if drop > max_drop:
        failed.append(f"{what} (drop {drop:.2f} > {max_drop})")
    if identical < min_identical:
        failed.append(f"identical answers {identical:.1%} < {min_identical:.1%}")
    result["status"] = "failed: " + "; ".join(failed) if failed else "passed"
    return result


def squad_windows(path: Path, tokenizer, seq_len: int, n_questions: int, flag: str = "--eval-data"):
    """The first `n_questions` questions of a SQuAD v1.1 file as model windows (doc stride
    `squad.doc_stride(seq_len)`: 128 at 384) and the questions by id."""
    questions = squad.read_squad(path)[:n_questions]
    bound = MAX_WINDOWS_PER_QUESTION * len(questions)
    wins: list = []
    for q in questions:  # stop early: a tiny --seq-len can turn 300 questions into 140,000 windows
        wins += squad.question_windows(tokenizer, q, seq_len)
        if len(wins) > bound:
            raise UsageError(
                f"{flag}: at --seq-len {seq_len} the first {len(questions)} questions of {path.name} make more "
                f"than {bound} windows (> {MAX_WINDOWS_PER_QUESTION} per question, against about 1 at SQuAD's 384), "
                f"too many to score: use a longer --seq-len")
    return wins, {q.id: q for q in questions}


def _span_logits(wins, input_names, run, pad_to, desc, progress):
    from tqdm import tqdm

    outs = []
    for w in tqdm(wins, desc=desc, unit="window", disable=not progress, leave=False,
                  file=console_stderr()):
        n = len(w.inputs["input_ids"])
        feeds = w.arrays(input_names)
        start, end = run(pad_inputs(feeds, pad_to) if pad_to else feeds)  # (1, seq) each
        outs.append((np.asarray(start[0, :n]), np.asarray(end[0, :n])))
    return outs


def squad_f1_gate(wins, questions, input_names: list[str], reference: Callable, runner: Callable,
                  pad_to: int | None, max_f1_drop: float, progress: bool = True,
                  cache: dict | None = None, min_identical: float = 0.0) -> dict:
    """Score the fp32 reference and the export on the same windows; judge the F1 drop (and
    the share of answers identical to the reference's, when `min_identical` > 0).

    `cache` keeps the reference's logits between bundles of one export run (same windows).
    """
    cache = {} if cache is None else cache
    if "reference" not in cache:  # real lengths: padding does not change fp32 logits
        cache["reference"] = _span_logits(wins, input_names, reference, None, "fp32 eval", progress)
    ref_outs = cache["reference"]
    got_outs = _span_logits(wins, input_names, runner, pad_to, "export eval", progress)
    golds = {qid: q.gold_texts for qid, q in questions.items()}
    ref_pred = squad.predictions(wins, ref_outs, questions)
    got_pred = squad.predictions(wins, got_outs, questions)
    ref_scores, got_scores = squad.scores(ref_pred, golds), squad.scores(got_pred, golds)
    identical = np.mean([ref_pred.get(q, "") == got_pred.get(q, "") for q in golds])
    drop = ref_scores["f1"] - got_scores["f1"]
    result = {
        "metric": "squad_f1",
        "n_questions": len(golds),
        "n_windows": len(wins),
        "fp32_pytorch": {"exact_match": ref_scores["exact_match"], "f1": ref_scores["f1"]},
        "export": {"exact_match": got_scores["exact_match"], "f1": got_scores["f1"]},
        "f1_drop": drop,
        "identical_answers": float(identical),
        "max_f1_drop": max_f1_drop,
        "min_identical_answers": min_identical,
    }
    return _judge(result, drop, max_f1_drop, float(identical), min_identical,
                  f"F1 {got_scores['f1']:.2f} vs fp32 {ref_scores['f1']:.2f}")

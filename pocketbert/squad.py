"""SQuAD v1.1 in one place: read the JSON, cut question + context into model windows with a doc
stride, find the best answer span over all windows, and score with the official EM/F1.

Every package uses these: the benchmark's `squad` workload, the export's F1 gate, task
distillation, and the Android demo's golden vectors (its Kotlin port must match them). numpy
only: the benchmark worker imports this on boards that have no torch.
"""

from __future__ import annotations

import collections
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pocketbert.common import UsageError
from pocketbert.readers import read_text_bounded

N_BEST = 20  # start/end candidates per window, as in the reference SQuAD post-processing
MAX_ANSWER_TOKENS = 30  # SQuAD's standard answer-length cap
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class Question:
    id: str
    question: str
    context: str
    answers: list[dict[str, Any]] = field(default_factory=list)  # [{"text", "answer_start"}]

    @property
    def gold_texts(self) -> list[str]:
        return [a["text"] for a in self.answers] or [""]


@dataclass
class Window:
    """One model call of a question: token ids of [CLS] question [SEP] context-part [SEP]."""

    question_id: str
    inputs: dict[str, list[int]]  # input_ids, attention_mask[, token_type_ids]; real length
    context_mask: list[bool]  # True on context tokens (where an answer may start or end)
    offsets: list[tuple[int, int]]  # char span of each token in the context ((0, 0) elsewhere)
    start: int = 0  # training label: answer start token (0 = [CLS]: not in this window)
    end: int = 0

    def arrays(self, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Model feeds, int64 (1, len)."""
        return {k: np.asarray([v], dtype=np.int64) for k, v in self.inputs.items()
                if names is None or k in names}


def read_squad(path: str | Path, answers: bool = True) -> list[Question]:
    """Every question of a SQuAD v1.1 JSON, validated (one-line UsageError on a bad file).
    `answers=False`: gold answers are not read at all (unlabelled transfer data)."""
    path = Path(path)
    text = read_text_bounded(path, what="SQuAD file")  # a regular file of bounded size, UTF-8
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise UsageError(f"SQuAD file {path} is not valid JSON ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise UsageError(f"SQuAD file {path}: expected {{\"data\": [articles...]}} (SQuAD v1.1 format)")
    out = []
    try:
        for article in data["data"]:
            for para in article["paragraphs"]:
                context = para["context"]
                if not isinstance(context, str):
                    raise TypeError("context")
                for qa in para["qas"]:
                    if not isinstance(qa["question"], str):
                        raise TypeError("question")
                    gold = [{"text": str(a["text"]), "answer_start": int(a["answer_start"])}
                            for a in qa.get("answers", [])] if answers else []
                    out.append(Question(str(qa["id"]), qa["question"].strip(), context, gold))
    except (KeyError, TypeError, ValueError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else f"wrong type: {e}"
        raise UsageError(f"SQuAD file {path}: malformed article/paragraph/question ({what}); expected SQuAD v1.1 data[].paragraphs[].{{context, qas[].{{id, question}}}}") from None
    if not out:
        raise UsageError(f"SQuAD file {path} has no questions")
    return out


def doc_stride(seq_len: int) -> int:
    """Overlap between windows: 128 at 384 (BERT's run_squad), scaled for other lengths."""
    return max(1, seq_len // 3)


def windows(tokenizer, questions: Sequence[Question], seq_len: int, stride: int | None = None,
            labels: bool = False) -> list[Window]:
    """Windows of every question (HF overflow with `stride` tokens of overlap, context truncated
    only); with `labels`, the first gold answer's token span (0, 0 when outside the window)."""
    stride = doc_stride(seq_len) if stride is None else stride
    out: list[Window] = []
    for q in questions:
        out += question_windows(tokenizer, q, seq_len, stride, labels)
    return out


def question_windows(tokenizer, q: Question, seq_len: int, stride: int | None = None,
                     labels: bool = False) -> list[Window]:
    stride = doc_stride(seq_len) if stride is None else stride
    question = q.question
    if len(question) + stride + 3 >= seq_len:  # (a token has >= 1 char) a short window may not fit
        question, stride = _fit_window(tokenizer, question, seq_len, stride)
    enc = tokenizer(question, q.context, truncation="only_second", max_length=seq_len, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True)
    out = []
    for i in range(len(enc["input_ids"])):
        seq_ids = enc.sequence_ids(i)
        mask = [s == 1 for s in seq_ids]
        offsets = [tuple(o) if m else (0, 0) for o, m in zip(enc["offset_mapping"][i], mask)]
        inputs = {k: list(enc[k][i]) for k in INPUT_NAMES if k in enc}
        w = Window(q.id, inputs, mask, offsets)
        if labels and q.answers:
            w.start, w.end = _label_span(q.answers[0], mask, offsets)
        out.append(w)
    return out


def _fit_window(tokenizer, question: str, seq_len: int, stride: int) -> tuple[str, int]:
    """Question and stride that fit a `seq_len` window: a question longer than 3/4 of it is cut
    (at a token end), and the stride clamped below the context room (the tokenizer requires
    stride < room; it panics otherwise). One-line UsageError when no context fits at all."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    min_context = max(1, seq_len // 4)
    max_question = seq_len - specials - min_context
    if max_question < 1:
        raise UsageError(f"sequence length {seq_len} is too short for question + context windows: "
                         f"use at least {specials + 2}")
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) > max_question:
        question = question[:enc["offset_mapping"][max_question - 1][1]]
        enc = tokenizer(question, add_special_tokens=False)
    room = seq_len - specials - len(enc["input_ids"])  # context tokens per window
    return question, max(0, min(stride, room - 1))


def _label_span(answer: dict, mask: list[bool], offsets: list[tuple[int, int]]) -> tuple[int, int]:
    s_char, e_char = answer["answer_start"], answer["answer_start"] + len(answer["text"])
    ctx = [j for j, m in enumerate(mask) if m]
    if not ctx or offsets[ctx[0]][0] > s_char or offsets[ctx[-1]][1] < e_char:
        return 0, 0  # the answer is not (wholly) in this window
    start = next(j for j in ctx if offsets[j][1] > s_char)
    end = next(j for j in reversed(ctx) if offsets[j][0] < e_char)
    return start, end


def best_span(start_logits: Sequence[np.ndarray], end_logits: Sequence[np.ndarray],
              context_masks: Sequence[Sequence[bool]], offsets: Sequence[Sequence[tuple[int, int]]],
              n_best: int = N_BEST, max_answer: int = MAX_ANSWER_TOKENS) -> tuple[int, int, float]:
    """Best answer (char_start, char_end, score) over all windows of one question: the top
    `n_best` starts x ends inside the context, start <= end < start + max_answer, by start + end
    logit. (0, 0, -inf) when no window has a legal span."""
    best = (0, 0, -np.inf)
    for s_log, e_log, mask, offs in zip(start_logits, end_logits, context_masks, offsets):
        mask = np.asarray(mask, dtype=bool)
        n = len(mask)
        s = np.where(mask, np.asarray(s_log, dtype=np.float64)[:n], -np.inf)
        e = np.where(mask, np.asarray(e_log, dtype=np.float64)[:n], -np.inf)
        starts = np.argsort(-s, kind="stable")[:n_best]
        ends = np.argsort(-e, kind="stable")[:n_best]
        for i in starts:
            if not mask[i]:
                continue
            for j in ends:
                if mask[j] and i <= j < i + max_answer and s[i] + e[j] > best[2]:
                    best = (int(offs[i][0]), int(offs[j][1]), float(s[i] + e[j]))
    return best


def predictions(wins: Sequence[Window], logits: Sequence[tuple[np.ndarray, np.ndarray]],
                questions: dict[str, Question]) -> dict[str, str]:
    """Answer text per question id from each window's (start, end) logits (real length)."""
    grouped: dict[str, list[tuple[Window, tuple]]] = collections.defaultdict(list)
    for w, lg in zip(wins, logits):
        grouped[w.question_id].append((w, lg))
    out = {}
    for qid, pairs in grouped.items():
        c0, c1, score = best_span([np.asarray(lg[0]) for _, lg in pairs], [np.asarray(lg[1]) for _, lg in pairs],
                                  [w.context_mask for w, _ in pairs], [w.offsets for w, _ in pairs])
        out[qid] = questions[qid].context[c0:c1] if score > -np.inf else ""
    return out


# ------------------------------------------------------------------ official SQuAD v1.1 metrics

def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official SQuAD v1.1)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, truth: str) -> float:
    p, t = normalize_answer(prediction).split(), normalize_answer(truth).split()
    same = sum((collections.Counter(p) & collections.Counter(t)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(t)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def scores(preds: dict[str, str], golds: dict[str, list[str]]) -> dict[str, float]:
    """EM and F1 in percent, max over the gold answers, averaged over questions (missing = 0)."""
    em = f1 = 0.0
    for qid, truths in golds.items():
        pred = preds.get(qid, "")
        em += max(exact_match(pred, g) for g in truths)
        f1 += max(f1_score(pred, g) for g in truths)
    n = max(len(golds), 1)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n, "n": len(golds)}

"""Workloads: what the benchmark feeds the models, tokenized once in the parent process.

  stsb:PATH   GLUE STS-B TSV (sentence pairs, batch 1): the paper's Table 3 full pass.
  squad:PATH  SQuAD v1.1 JSON: one item per question; a long context is split into windows of
              seq_len tokens with a doc stride of seq_len/3 (128 at 384, as in BERT's run_squad),
              and the item's latency is the sum of its windows (what the user waits for).
  synthetic   the default with no data: QA-shaped items of common English words whose token
              length is log-normal with median 160 and sigma 0.35 (SQuAD v1.1 dev's question +
              context length is about that), clipped to [16, seq_len]; seed 0.

Each item keeps its tokenization time (the paper excludes it; we report it separately) and what
its post-processing (answer-span search, score) needs. Post-processing code lives here too, in
numpy, so the worker times exactly the same thing for every runtime.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pocketbert.common import UsageError, lookup

SYNTHETIC_ITEMS = 48  # enough for stable p50/p90 in a default run that must finish in minutes
SYNTHETIC_MEDIAN_TOKENS = 160
SYNTHETIC_SIGMA = 0.35
MAX_ANSWER_TOKENS = 30  # SQuAD's standard answer-length cap
N_BEST = 20  # start/end candidates per window, as in the reference SQuAD post-processing


@dataclass
class Item:
    """One timed unit: a sentence pair or a question (with one or more windows)."""

    id: str
    features: list[dict[str, np.ndarray]]  # one model call each; name -> (1, real_len) int64
    tokenize_ms: float
    post: dict[str, Any] = field(default_factory=dict)  # what post-processing needs


@dataclass
class Workload:
    name: str  # registry name: stsb | squad | synthetic
    task: str  # model head it needs
    source: str  # file path or a description of the generator
    items: list[Item]


@dataclass(frozen=True)
class WorkloadKind:
    name: str
    task: str
    needs_path: bool
    load: Callable[..., list[Item]]  # (path|None, tokenizer, seq_len, limit) -> items


WORKLOADS: dict[str, WorkloadKind] = {}


def register_workload(name: str, task: str, needs_path: bool):
    def deco(fn):
        WORKLOADS[name] = WorkloadKind(name, task, needs_path, fn)
        return fn
    return deco


def parse_spec(spec: str) -> tuple[WorkloadKind, Path | None]:
    """'stsb:PATH' | 'squad:PATH' | 'synthetic' -> (kind, path); bad names/paths fail in one line."""
    name, _, path = spec.partition(":")
    kind = lookup(WORKLOADS, name, "workload")
    if kind.needs_path and not path:
        raise UsageError(f"workload '{name}' needs a file: --workload {name}:PATH")
    if not kind.needs_path and path:
        raise UsageError(f"workload '{name}' takes no file (got '{spec}')")
    if path and not Path(path).expanduser().is_file():
        raise UsageError(f"{name} data file {path} not found")
    return kind, (Path(path).expanduser() if path else None)


def check_workload(spec: str) -> None:
    """Read (not tokenize) a workload's file now, so a malformed one fails before any timing."""
    kind, path = parse_spec(spec)
    if kind.name == "stsb":
        read_stsb(path)
    elif kind.name == "squad":
        read_squad(path)


def load_workload(spec: str, tokenizer, seq_len: int, limit: int | None = None) -> Workload:
    """Parse, read and tokenize a workload (the first `limit` items when given)."""
    kind, path = parse_spec(spec)
    items = kind.load(path, tokenizer, seq_len, limit)
    if not items:
        raise UsageError(f"workload {spec} has no items")
    source = str(path) if path else (f"{len(items)} items, lognormal(median {SYNTHETIC_MEDIAN_TOKENS}, "
                                     f"sigma {SYNTHETIC_SIGMA}) tokens, seed 0")
    return Workload(kind.name, kind.task, source, items)


def _arrays(enc, i: int | None = None) -> dict[str, np.ndarray]:
    out = {}
    for k in ("input_ids", "attention_mask", "token_type_ids"):
        if k in enc:
            v = enc[k] if i is None else enc[k][i]
            out[k] = np.asarray([v], dtype=np.int64)  # (1, len)
    return out


# ------------------------------------------------------------------ STS-B

STSB_COLUMNS = ("sentence1", "sentence2")


def read_stsb(path: Path) -> list[tuple[str, str, str, float | None]]:
    """(id, sentence1, sentence2, score|None) rows of a GLUE STS-B TSV, validated."""
    with open(path, newline="", encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines:
        raise UsageError(f"STS-B file {path} is empty")
    header = lines[0].split("\t")
    missing = [c for c in STSB_COLUMNS if c not in header]
    if missing:
        raise UsageError(f"STS-B file {path}: header lacks {', '.join(missing)} (expected GLUE "
                         "STS-B TSV: index ... sentence1 sentence2 score)")
    i1, i2 = header.index("sentence1"), header.index("sentence2")
    iscore = header.index("score") if "score" in header else None
    iid = header.index("index") if "index" in header else None
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise UsageError(f"STS-B file {path}, line {lineno}: {len(fields)} tab-separated fields, "
                             f"expected {len(header)}")
        try:
            score = float(fields[iscore]) if iscore is not None else None
        except ValueError:
            raise UsageError(f"STS-B file {path}, line {lineno}: score {fields[iscore]!r} is "
                             "not a number") from None
        rows.append((fields[iid] if iid is not None else str(lineno - 2), fields[i1], fields[i2], score))
    return rows


@register_workload("stsb", task="sequence-classification", needs_path=True)
def load_stsb(path: Path, tokenizer, seq_len: int, limit: int | None) -> list[Item]:
    rows = read_stsb(path)[:limit]
    items = []
    for rid, s1, s2, score in rows:
        t0 = time.perf_counter()
        enc = tokenizer(s1, s2, truncation="longest_first", max_length=seq_len)
        ms = (time.perf_counter() - t0) * 1e3
        items.append(Item(f"stsb-{rid}", [_arrays(enc)], ms, {"score": score}))
    return items


# ------------------------------------------------------------------ SQuAD

def read_squad(path: Path) -> list[tuple[str, str, str]]:
    """(id, question, context) for every question of a SQuAD v1.1 JSON, validated."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"SQuAD file {path} is not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise UsageError(f"SQuAD file {path}: expected {{\"data\": [articles...]}} (SQuAD v1.1 format)")
    out = []
    try:
        for article in data["data"]:
            for para in article["paragraphs"]:
                context = para["context"]
                for qa in para["qas"]:
                    out.append((str(qa["id"]), qa["question"], context))
    except (KeyError, TypeError) as e:
        raise UsageError(f"SQuAD file {path}: malformed article/paragraph/question (missing {e}); "
                         "expected SQuAD v1.1 data[].paragraphs[].{context, qas[].{id, question}}") from None
    return out


def doc_stride(seq_len: int) -> int:
    """Overlap between windows: 128 at 384 (BERT's run_squad), scaled for other lengths."""
    return max(1, seq_len // 3)


def tokenize_qa(tokenizer, question: str, context: str, seq_len: int) -> tuple[list[dict], dict]:
    """Windows of (question, context) and, per window, its context-token mask and char offsets."""
    enc = tokenizer(question, context, truncation="only_second", max_length=seq_len,
                    stride=doc_stride(seq_len), return_overflowing_tokens=True,
                    return_offsets_mapping=True)
    features, masks, offsets = [], [], []
    for i in range(len(enc["input_ids"])):
        features.append(_arrays(enc, i))
        seq_ids = enc.sequence_ids(i)
        masks.append(np.array([s == 1 for s in seq_ids], dtype=bool))
        offsets.append(np.asarray(enc["offset_mapping"][i], dtype=np.int32))
    return features, {"context_masks": masks, "offsets": offsets, "context": context}


@register_workload("squad", task="question-answering", needs_path=True)
def load_squad(path: Path, tokenizer, seq_len: int, limit: int | None) -> list[Item]:
    items = []
    for qid, question, context in read_squad(path)[:limit]:
        t0 = time.perf_counter()
        features, post = tokenize_qa(tokenizer, question, context, seq_len)
        ms = (time.perf_counter() - t0) * 1e3
        items.append(Item(qid, features, ms, post))
    return items


# ------------------------------------------------------------------ synthetic

def synthetic_lengths(n: int, seq_len: int, seed: int = 0) -> list[int]:
    """Token lengths: log-normal(median SYNTHETIC_MEDIAN_TOKENS, sigma SYNTHETIC_SIGMA), clipped."""
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(np.log(SYNTHETIC_MEDIAN_TOKENS), SYNTHETIC_SIGMA, size=n)
    return [int(x) for x in np.clip(np.round(raw), min(16, seq_len), seq_len)]


@register_workload("synthetic", task="question-answering", needs_path=False)
def load_synthetic(path: None, tokenizer, seq_len: int, limit: int | None) -> list[Item]:
    from pocketbert.textgen import _sentence

    rng = np.random.default_rng(0)
    items = []
    for i, length in enumerate(synthetic_lengths(limit or SYNTHETIC_ITEMS, seq_len)):
        question = _sentence(rng, int(rng.integers(4, 12))).rstrip(".") + "?"
        context = _sentence(rng, length)  # ~1 token a word: truncation brings it to `length`
        t0 = time.perf_counter()
        enc = tokenizer(question, context, truncation="only_second", max_length=length,
                        return_offsets_mapping=True)
        ms = (time.perf_counter() - t0) * 1e3
        post = {"context_masks": [np.array([s == 1 for s in enc.sequence_ids()], dtype=bool)],
                "offsets": [np.asarray(enc["offset_mapping"], dtype=np.int32)], "context": context}
        items.append(Item(f"synthetic-{i}", [_arrays(enc)], ms, post))
    return items


# ------------------------------------------------------------------ post-processing (timed)

def best_span(start_logits: list[np.ndarray], end_logits: list[np.ndarray], post: dict) -> tuple[int, int, float]:
    """Best answer (char_start, char_end, score) over all windows: top-N_BEST starts x ends within
    the context, end >= start, at most MAX_ANSWER_TOKENS tokens (the reference SQuAD search)."""
    best = (0, 0, -np.inf)
    for s_log, e_log, mask, offs in zip(start_logits, end_logits, post["context_masks"], post["offsets"]):
        s = np.where(mask, s_log[: len(mask)], -np.inf)
        e = np.where(mask, e_log[: len(mask)], -np.inf)
        starts = np.argsort(s)[::-1][:N_BEST]
        ends = np.argsort(e)[::-1][:N_BEST]
        for i in starts:
            if not mask[i]:
                continue
            for j in ends:
                if mask[j] and i <= j < i + MAX_ANSWER_TOKENS and s[i] + e[j] > best[2]:
                    best = (int(offs[i][0]), int(offs[j][1]), float(s[i] + e[j]))
    return best


def postprocess(task: str, outputs: list[list[np.ndarray]], post: dict) -> Any:
    """Turn one item's raw outputs (per window, per output) into its answer."""
    if task == "question-answering":
        start = [o[0][0] for o in outputs]  # (seq,) per window
        end = [o[1][0] for o in outputs]
        c0, c1, _ = best_span(start, end, post)
        return post["context"][c0:c1]
    logits = outputs[0][0][0]  # (num_labels,)
    z = np.exp(logits - logits.max())
    return (z / z.sum()).tolist()

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pocketbert import glue, squad
from pocketbert.common import UsageError, lookup
from pocketbert.contract_parts import Item  # one timed unit, as the worker spec carries it
from pocketbert.pooling import pool_numpy
from pocketbert.squad import best_span
from pocketbert.texts import read_passages
from pocketbert.token_labels import word_labels
from pocketbert.textgen import synthetic_qa

SYNTHETIC_ITEMS = 16  # the main job's items: padded to 384 each costs 0.15-0.4 s per runtime (32 items: +25 s
# of a ~3 min main job); every runtime gets the same 16, so ratios are paired
SYNTHETIC_MEDIAN_TOKENS = 160
SYNTHETIC_SIGMA = 0.35
ITEMS_SCHEMA = "pocketbert-items/1"


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
    load: Callable[..., list[Item]]  # (data, tokenizer, seq_len, limit) -> items
    read: Callable[[Path], Any] | None = None  # path -> the file's rows, validated (kinds with a file)


@dataclass(frozen=True)
class WorkloadData:
    """A workload spec parsed and its file read (validated) once: every tokenizer tokenizes this."""

    spec: str
    kind: WorkloadKind
    path: Path | None
    data: Any = None  # the file's rows (kind.read); None for generated workloads


WORKLOADS: dict[str, WorkloadKind] = {}


def register_workload(name: str, task: str, needs_path: bool, read: Callable[[Path], Any] | None = None):
    def deco(fn):
        WORKLOADS[name] = WorkloadKind(name, task, needs_path, fn, read)
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


def read_workload(spec: str) -> WorkloadData:
    """Parse a spec and read (not tokenize) its file, once: a malformed one fails before any timing."""
    kind, path = parse_spec(spec)
    return WorkloadData(spec, kind, path, kind.read(path) if kind.read else None)


def check_workload(spec: str) -> None:
    """A spec and its file are valid (a command-line check; the bench reads it again for its run)."""
    read_workload(spec)


def tokenize_workload(read: WorkloadData, tokenizer, seq_len: int, limit: int | None = None) -> Workload:
    """The items of a read workload in one tokenizer's tokens (the first `limit` items when given)."""
    items = read.kind.load(read.data, tokenizer, seq_len, limit)
    if not items:
        raise UsageError(f"workload {read.spec} has no items")
    source = str(read.path) if read.path else (f"{len(items)} items, lognormal(median {SYNTHETIC_MEDIAN_TOKENS}, "
                                               f"sigma {SYNTHETIC_SIGMA}) tokens, seed 0")
    return Workload(read.kind.name, read.kind.task, source, items)


def load_workload(spec: str, tokenizer, seq_len: int, limit: int | None = None) -> Workload:
    """Parse, read and tokenize a workload (the first `limit` items when given)."""
    return tokenize_workload(read_workload(spec), tokenizer, seq_len, limit)


def _inputs(enc) -> dict[str, list[int]]:
    return {k: list(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}


# ------------------------------------------------------------------ STS-B

@register_workload("stsb", task="sequence-classification", needs_path=True, read=glue.read_tsv)
def load_stsb(rows: glue.TsvRows, tokenizer, seq_len: int, limit: int | None) -> list[Item]:
    items = []
    for i in range(len(rows.ids))[:limit]:
        t0 = time.perf_counter()
        enc = tokenizer(rows.first[i], rows.second[i] if rows.second else None,
                        truncation="longest_first", max_length=seq_len)
        ms = (time.perf_counter() - t0) * 1e3
        items.append(Item(id=f"stsb-{rows.ids[i]}", features=[_inputs(enc)], tokenize_ms=ms,
                          post={"label": rows.labels[i] if rows.labels else None}))
    return items


# ------------------------------------------------------------------ sentences (embeddings, token labels)

def read_sentences(path: Path) -> list[tuple[str, ...]]:
    """A GLUE-style TSV's rows (sentence pairs, with the gold score last when it has one: STS-B) or
    one text per line of any other file (pocketbert.texts), each as a tuple."""
    if path.suffix == ".tsv":
        rows = glue.read_tsv(path)
        gold = glue.float_labels(rows) if rows.second and rows.labels else [None] * len(rows.first)
        if rows.second:
            return [(a, b, g) for a, b, g in zip(rows.first, rows.second, gold)]
    return [(s,) for s in read_passages(path)]


@register_workload("sentences", task="feature-extraction", needs_path=True, read=read_sentences)
def load_sentences(rows: list[tuple], tokenizer, seq_len: int, limit: int | None) -> list[Item]:
    """One item per sentence, or per STS-B pair (two model calls, its answer the pair's cosine, scored
    by Spearman against the gold score): what semantic search on a phone embeds."""
    items = []
    for i, row in enumerate(rows[:limit]):
        texts, score = (row[:2], row[2]) if len(row) == 3 else (row, None)
        t0 = time.perf_counter()
        encs = [tokenizer(t, truncation=True, max_length=seq_len) for t in texts]
        ms = (time.perf_counter() - t0) * 1e3
        items.append(Item(id=f"sentences-{i}", features=[_inputs(e) for e in encs], tokenize_ms=ms,
                          post={"n_tokens": [len(e["input_ids"]) for e in encs], "score": score}))
    return items


@register_workload("tokens", task="token-classification", needs_path=True, read=read_passages)
def load_tokens(passages: list[str], tokenizer, seq_len: int, limit: int | None) -> list[Item]:
    """One item per passage (cut to seq_len tokens); its answer is a label per word."""
    items = []
    for i, text in enumerate(passages[:limit]):
        t0 = time.perf_counter()
        enc = tokenizer(text, truncation=True, max_length=seq_len)
        ms = (time.perf_counter() - t0) * 1e3
        items.append(Item(id=f"tokens-{i}", features=[_inputs(enc)], tokenize_ms=ms, post={"word_ids": enc.word_ids()}))
    return items


# ------------------------------------------------------------------ SQuAD

@register_workload("squad", task="question-answering", needs_path=True, read=squad.read_squad)
def load_squad(questions: list[squad.Question], tokenizer, seq_len: int, limit: int | None) -> list[Item]:
    items = []
    for q in questions[:limit]:
        t0 = time.perf_counter()
        wins = squad.question_windows(tokenizer, q, seq_len)
        ms = (time.perf_counter() - t0) * 1e3
        items.append(Item(id=q.id, features=[w.inputs for w in wins], tokenize_ms=ms,
                          post=dict(_qa_post(wins, q.context), gold=q.gold_texts)))
    return items


def answer_quality(items: list[Item], answers: list[str]) -> dict[str, Any] | None:
    """Official SQuAD EM/F1 of one run's answers against the items' gold, or STS-B Spearman (points)
    of the pairs' cosines against their gold scores (None without gold)."""
    if not answers or len(answers) != len(items):
        return None
    if all(i.post.get("score") is not None for i in items):
        rho = glue.pearson_spearman([float(a) for a in answers], [i.post["score"] for i in items])
        return {"metric": "stsb_spearman", "spearman": 100 * rho["spearman"], "n": rho["n"]}
    if any("gold" not in i.post for i in items):
        return None
    scores = squad.scores({i.id: a for i, a in zip(items, answers)}, {i.id: i.post["gold"] for i in items})
    return {"metric": "squad", **scores}


def _qa_post(wins, context: str) -> dict[str, Any]:
    return {"context_masks": [w.context_mask for w in wins], "offsets": [w.offsets for w in wins],
            "context": context}


# ------------------------------------------------------------------ synthetic

def synthetic_lengths(n: int, seq_len: int, seed: int = 0) -> list[int]:
    """Token lengths: log-normal(median SYNTHETIC_MEDIAN_TOKENS, sigma SYNTHETIC_SIGMA), clipped."""
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(np.log(SYNTHETIC_MEDIAN_TOKENS), SYNTHETIC_SIGMA, size=n)
    return [int(x) for x in np.clip(np.round(raw), min(16, seq_len), seq_len)]


@register_workload("synthetic", task="question-answering", needs_path=False)
def load_synthetic(data: None, tokenizer, seq_len: int, limit: int | None) -> list[Item]:
    rng = np.random.default_rng(0)
    items = []
    for i, length in enumerate(synthetic_lengths(limit or SYNTHETIC_ITEMS, seq_len)):
        question, context = synthetic_qa(rng, length)
        t0 = time.perf_counter()
        wins = squad.question_windows(tokenizer, squad.Question(f"synthetic-{i}", question, context), length,
                                      stride=0)[:1]  # one window, cut to `length` tokens
        ms = (time.perf_counter() - t0) * 1e3
        items.append(Item(id=f"synthetic-{i}", features=[w.inputs for w in wins], tokenize_ms=ms,
                          post=_qa_post(wins, context)))
    return items


# ------------------------------------------------------------------ post-processing (timed)

def postprocess(task: str, outputs: list[list[np.ndarray]], post: dict) -> Any:
    """Turn one item's raw outputs (per window, per output) into its answer."""
    if task == "question-answering":
        start = [o[0][0] for o in outputs]  # (seq,) per window
        end = [o[1][0] for o in outputs]
        c0, c1, _ = best_span(start, end, post["context_masks"], post["offsets"])
        return post["context"][c0:c1]
    if task == "feature-extraction":  # a file that outputs token states is pooled here, as its user must
        vectors = [o[0][0] if o[0].ndim == 2 else pool_numpy(o[0][0], n) for o, n in zip(outputs, post["n_tokens"])]
        if len(vectors) == 2:  # a pair: its cosine
            a, b = (np.asarray(v, np.float64) for v in vectors)
            return round(float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)), 6)
        return round(float(np.linalg.norm(vectors[0])), 6)  # one sentence: its norm (a fingerprint)
    if task == "token-classification":
        return " ".join(map(str, word_labels(outputs[0][0][0], post["word_ids"])))
    logits = outputs[0][0][0]  # (num_labels,)
    z = np.exp(logits - logits.max())
    return (z / z.sum()).tolist()


# ------------------------------------------------------------------ items on disk (worker input)

def save_items(items: list[Item], path: Path) -> None:
    """Items as a JSON file of their own (scripts/compare_stacks.py; the bench's workers get theirs in
    their WorkerSpec)."""
    Path(path).write_text(json.dumps({"schema": ITEMS_SCHEMA, "items": [i.model_dump(mode="json") for i in items]}))


def read_items(path: Path) -> list[Item]:
    data = json.loads(Path(path).read_text())
    if data.get("schema") != ITEMS_SCHEMA:
        raise ValueError(f"{path}: items schema {data.get('schema')!r}, expected {ITEMS_SCHEMA!r}")
    return [Item.model_validate(d) for d in data["items"]]

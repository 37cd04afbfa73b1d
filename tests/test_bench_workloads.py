"""Workload parsers on small inline STS-B / SQuAD snippets, the synthetic generator, and the
timed post-processing (answer-span search)."""

import json

import numpy as np
import pytest

from bench.workloads import SYNTHETIC_MEDIAN_TOKENS, load_workload, parse_spec, postprocess, synthetic_lengths
from pocketbert.common import UsageError
from pocketbert.glue import float_labels, read_tsv
from pocketbert.squad import Question, best_span, question_windows, read_squad
from pocketbert.models import load_tokenizer

STSB = ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
        "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man is playing music.\tA man plays music.\t5.000\n"
        "1\tmain-captions\tMSRvid\t2012test\t0002\tnone\tnone\tThe city is large.\tA small river.\t0.500\n")

SQUAD = {"version": "1.1", "data": [{"title": "t", "paragraphs": [
    {"context": "The paper was written by the student in the city.",
     "qas": [{"id": "q1", "question": "Who wrote the paper?", "answers": [{"answer_start": 25, "text": "the student"}]},
             {"id": "q2", "question": "Where?", "answers": []}]}]}]}


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(None)


def test_stsb_parse_and_tokenize(tmp_path, tok):
    path = tmp_path / "dev.tsv"
    path.write_text(STSB)
    rows = read_tsv(path)
    assert list(zip(rows.ids, rows.first, rows.second, float_labels(rows))) == [
        ("0", "A man is playing music.", "A man plays music.", 5.0), ("1", "The city is large.", "A small river.", 0.5)]
    wl = load_workload(f"stsb:{path}", tok, seq_len=32)
    assert wl.task == "sequence-classification" and len(wl.items) == 2
    item = wl.items[0]
    assert len(item.features) == 1 and item.tokenize_ms > 0
    ids = item.features[0]["input_ids"]
    assert ids[0] == tok.cls_token_id and ids.count(tok.sep_token_id) == 2
    assert item.features[0]["attention_mask"] == [1] * len(ids)
    assert item.post["label"] == "5.000"
    assert len(load_workload(f"stsb:{path}", tok, 32, limit=1).items) == 1


@pytest.mark.parametrize("text, message", [
    ("index\tfoo\tbar\n0\ta\tb\n", "header lacks 'sentence1'/'sentence2' or 'sentence'"),
    (STSB + "2\tonly\tthree\n", "line 4: 3 tab-separated fields, expected 10"),
    (STSB.replace("5.000", "five"), "score 'five' is not a finite number"),
    ("", "is empty"),
])
def test_stsb_malformed(tmp_path, text, message):
    path = tmp_path / "dev.tsv"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        float_labels(read_tsv(path))


def test_squad_parse_windows_and_answer(tmp_path, tok):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD))
    assert [q.id for q in read_squad(path)] == ["q1", "q2"]
    wl = load_workload(f"squad:{path}", tok, seq_len=64)
    assert wl.task == "question-answering" and [i.id for i in wl.items] == ["q1", "q2"]
    item = wl.items[0]
    mask = item.post["context_masks"][0]
    assert sum(mask) > 0 and not mask[0]  # [CLS] and the question are not context
    # Logits that point at "the student": the post-processing must return that text.
    ids = item.features[0]["input_ids"]
    words = tok.convert_ids_to_tokens(list(ids))
    s = words.index("student") - 1  # "the" before it, inside the context
    start, end = np.full(len(ids), -5.0), np.full(len(ids), -5.0)
    start[s], end[s + 1] = 9.0, 9.0
    assert postprocess("question-answering", [[start[None], end[None]]], item.post) == "the student"


def test_squad_long_context_is_split_into_strided_windows(tok):
    context = " ".join(["the city river"] * 60)  # ~180 tokens
    wins = question_windows(tok, Question("q", "where is the river?", context), seq_len=64)
    assert len(wins) > 3 and all(len(w.inputs["input_ids"]) <= 64 for w in wins)
    # consecutive windows overlap by the doc stride (64 // 3 = 21 context tokens)
    first, second = ([o for o, m in zip(w.offsets, w.context_mask) if m] for w in wins[:2])
    assert first[-21:] == second[:21]


@pytest.mark.parametrize("payload, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"version": "1.1"}), "expected"),
    (json.dumps({"data": [{"paragraphs": [{"qas": []}]}]}), "missing 'context'"),
])
def test_squad_malformed(tmp_path, payload, message):
    path = tmp_path / "squad.json"
    path.write_text(payload)
    with pytest.raises(UsageError, match=message):
        read_squad(path)


def test_spec_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown workload 'glue'.*squad, stsb, synthetic"):
        parse_spec("glue:x")
    with pytest.raises(UsageError, match="needs a file"):
        parse_spec("stsb")
    with pytest.raises(UsageError, match="not found"):
        parse_spec(f"squad:{tmp_path / 'none.json'}")
    with pytest.raises(UsageError, match="takes no file"):
        parse_spec("synthetic:x")


def test_synthetic_is_seeded_and_follows_its_length_distribution(tok):
    lengths = synthetic_lengths(2000, 512)
    assert lengths == synthetic_lengths(2000, 512)
    assert abs(np.median(lengths) - SYNTHETIC_MEDIAN_TOKENS) < 8
    assert min(lengths) >= 16 and max(lengths) <= 512
    wl = load_workload("synthetic", tok, seq_len=64, limit=5)
    real = [len(i.features[0]["input_ids"]) for i in wl.items]
    assert real == synthetic_lengths(5, 64)  # each item is cut to exactly its drawn length
    assert wl.items[0].features == load_workload("synthetic", tok, 64, 5).items[0].features


def test_best_span_respects_context_and_max_length():
    masks = [[False, False, True, True, True]]
    offsets = [[(0, 0), (0, 0), (0, 3), (4, 8), (9, 12)]]
    start = np.array([9.0, 0, 1, 2, 0])  # the best start is outside the context: ignored
    end = np.array([0, 0, 0, 3.0, 1])
    assert best_span([start], [end], masks, offsets)[:2] == (4, 8)
    # the end may not come before the start, nor the span exceed max_answer tokens
    assert best_span([np.array([0, 0, 0, 0, 5.0])], [np.array([0, 0, 0, 5.0, 0])], masks, offsets)[:2] == (9, 12)
    assert best_span([np.array([0, 0, 5.0, 0, 0])], [np.array([0, 0, 0, 0, 5.0])], masks, offsets,
                     max_answer=2)[:2] != (0, 12)

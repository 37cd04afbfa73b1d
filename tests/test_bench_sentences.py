"""The sentence workloads (feature-extraction: STS-B pairs or lines of text; token-classification:
passages) and their timed post-processing: embeddings pooled when a file outputs token states, a
pair's cosine scored by Spearman, a label per word."""

import numpy as np
import pytest

from bench.workloads import answer_quality, load_workload, postprocess
from pocketbert.common import UsageError
from pocketbert.models import load_tokenizer
from pocketbert.pooling import DEFAULT_POOLING, pool_numpy

STSB = ("index\tsentence1\tsentence2\tscore\n"
        "0\tA man is playing music.\tA man plays music.\t5.000\n"
        "1\tThe city is large.\tA small river.\t0.500\n"
        "2\tThe team won the game.\tThe team won a game.\t4.200\n")


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(None)


def test_stsb_pairs_are_two_calls_and_text_lines_one(tmp_path, tok):
    tsv = tmp_path / "dev.tsv"
    tsv.write_text(STSB)
    wl = load_workload(f"sentences:{tsv}", tok, seq_len=32)
    assert wl.task == "feature-extraction" and len(wl.items) == 3
    item = wl.items[0]
    assert len(item.features) == 2 and item.post["score"] == 5.0
    assert item.post["n_tokens"] == [len(f["input_ids"]) for f in item.features]
    txt = tmp_path / "wiki.txt"
    txt.write_text(" = Title = \n\n first line of text .\n second line .\n")
    wl = load_workload(f"sentences:{txt}", tok, seq_len=32)
    assert [len(i.features) for i in wl.items] == [1, 1] and wl.items[0].post["score"] is None
    assert answer_quality(wl.items, ["1.0", "1.0"]) is None  # no gold scores: no quality figure
    tokens = load_workload(f"tokens:{txt}", tok, seq_len=32)
    assert tokens.task == "token-classification" and tokens.items[1].post["word_ids"][0] is None
    with pytest.raises(UsageError, match="has no text"):
        (tmp_path / "empty.txt").write_text("\n = Only a heading = \n")
        load_workload(f"sentences:{tmp_path / 'empty.txt'}", tok, 32)


def test_embedding_postprocess_pools_token_states_like_the_graph_and_scores_spearman(tmp_path, tok):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 16)), rng.normal(size=(9, 16))
    emb = [pool_numpy(a, 5), pool_numpy(b, 9)]  # what our graph outputs for these real lengths
    want = float(emb[0] @ emb[1])
    pooled = postprocess("feature-extraction", [[emb[0][None]], [emb[1][None]]], {"n_tokens": [5, 9]})
    states = postprocess("feature-extraction", [[a[None]], [b[None]]], {"n_tokens": [5, 9]})  # padded states
    assert pooled == states == pytest.approx(want, abs=1e-6)
    assert abs(np.linalg.norm(emb[0]) - 1) < 1e-6 and DEFAULT_POOLING.normalize
    tsv = tmp_path / "dev.tsv"
    tsv.write_text(STSB)
    items = load_workload(f"sentences:{tsv}", tok, 32).items
    assert answer_quality(items, ["0.9", "0.1", "0.8"])["spearman"] == pytest.approx(100.0)
    assert answer_quality(items, ["0.1", "0.9", "0.5"])["spearman"] == pytest.approx(-100.0)


def test_token_postprocess_is_a_label_per_word(tok):
    enc = tok("north river city", truncation=True)
    logits = np.zeros((1, len(enc["input_ids"]), 3))
    for i, w in enumerate(enc.word_ids()):
        if w is not None:
            logits[0, i, w] = 1.0  # word k -> label k
    assert postprocess("token-classification", [[logits]], {"word_ids": enc.word_ids()}) == "0 1 2"

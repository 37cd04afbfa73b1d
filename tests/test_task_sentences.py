"""feature-extraction (pooling in the graph, sentence-transformers folders) and token-classification
(word labels, entity spans) on tiny seeded models, and their --eval-data gates on real text."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from export.pipeline import _reference_runner
from export.task_eval import load_task_data
from pocketbert.common import UsageError
from pocketbert.models import load_model
from pocketbert.pooling import DEFAULT_POOLING, Pooling, pool_numpy, read_pooling
from pocketbert.token_labels import entity_spans, word_labels, word_offsets
from pocketbert.wrapper import wrap

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STSB = DATA / "stsb" / "dev.tsv"
WIKI = DATA / "wikitext2" / "valid.txt"
needs_data = pytest.mark.skipif(not (STSB.is_file() and WIKI.is_file()), reason="../shared/data absent")


def st_folder(tmp_path: Path, mode: str = "cls", normalize: bool = True, subdir: str = "") -> Path:
    """A sentence-transformers folder around a saved bert-tiny encoder (its own seed 0)."""
    loaded = load_model("bert-tiny", "feature-extraction")
    enc = tmp_path / subdir if subdir else tmp_path
    loaded.model.save_pretrained(enc)
    loaded.tokenizer.save_pretrained(enc)
    modules = [{"idx": 0, "name": "0", "path": subdir, "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 64, "pooling_mode_cls_token": mode == "cls",
         "pooling_mode_mean_tokens": mode == "mean", "pooling_mode_max_tokens": mode == "max"}))
    return tmp_path


def _embed(loaded, text: str) -> np.ndarray:
    enc = loaded.tokenizer(text, return_tensors="pt")
    feeds = [enc[n] for n in loaded.input_names]
    with torch.no_grad():
        return wrap(loaded)(*feeds)[0][0].numpy()


def test_sentence_transformers_folder_sets_the_pooling_built_into_the_graph(tmp_path):
    folder = st_folder(tmp_path, mode="cls", normalize=False, subdir="0_Transformer")
    loaded = load_model(str(folder), "feature-extraction")
    assert loaded.pooling.mode == "cls" and loaded.pooling.normalize is False
    assert loaded.model.pooler is None  # BERT's pooler is not the sentence embedding
    enc = loaded.tokenizer("the river and the city", return_tensors="pt")
    with torch.no_grad():
        hidden = loaded.model(**enc).last_hidden_state[0].numpy()  # (seq, 64)
    np.testing.assert_allclose(_embed(loaded, "the river and the city"), hidden[0], atol=1e-5)  # [CLS], unnormalised


def test_mean_pooling_ignores_padding_and_normalises():
    loaded = load_model("bert-tiny", "feature-extraction")
    assert loaded.pooling == DEFAULT_POOLING
    tok = loaded.tokenizer
    text = "the first student model was fast"
    enc = tok(text, return_tensors="pt")
    with torch.no_grad():
        hidden = loaded.model(**enc).last_hidden_state[0].numpy()
    want = hidden.mean(axis=0) / np.linalg.norm(hidden.mean(axis=0))
    got = _embed(loaded, text)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert abs(np.linalg.norm(got) - 1) < 1e-5
    padded = tok(text, padding="max_length", max_length=32, return_tensors="pt")  # padded keys masked, not averaged
    with torch.no_grad():
        out = wrap(loaded)(*[padded[n] for n in loaded.input_names])[0][0].numpy()
    np.testing.assert_allclose(out, want, atol=1e-5)
    np.testing.assert_allclose(pool_numpy(np.vstack([hidden, np.ones((5, 64))]), len(hidden)), want, atol=1e-5)


def test_pooling_configs_read_and_refused(tmp_path):
    assert read_pooling(tmp_path) == DEFAULT_POOLING  # a plain folder
    folder = st_folder(tmp_path / "a", mode="mean")
    assert read_pooling(folder) == Pooling("mean", True, str(folder / "1_Pooling" / "config.json"))
    with pytest.raises(UsageError, match="pooling max is not built by pocketbert.*mean, cls"):
        read_pooling(st_folder(tmp_path / "b", mode="max"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "modules.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read .*modules.json"):
        read_pooling(tmp_path / "c")


def test_token_classification_words_and_entity_spans():
    loaded = load_model("distilbert-tiny", "token-classification")
    assert loaded.label_names == ["LABEL_0", "LABEL_1"]
    text = "north river city"
    enc = loaded.tokenizer(text, return_offsets_mapping=True)
    logits = np.zeros((len(enc["input_ids"]), 3))
    labels = ["O", "B-LOC", "I-LOC"]
    ids = enc.word_ids()
    # word 0 -> B-LOC, word 1 -> I-LOC (one span), word 2 -> O
    for i, w in enumerate(ids):
        if w is not None:
            logits[i, [1, 2, 0][w]] = 5.0
    per_word = word_labels(logits, ids)
    assert per_word == [1, 2, 0]
    spans = entity_spans([labels[k] for k in per_word], word_offsets(enc["offset_mapping"], ids), text)
    assert spans == [{"entity": "LOC", "start": 0, "end": 11, "text": "north river"}]
    assert entity_spans(["B-PER", "I-LOC", "PER", "PER", "O"], [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)], "a b c d e") == [
        {"entity": "PER", "start": 0, "end": 1, "text": "a"}, {"entity": "LOC", "start": 2, "end": 3, "text": "b"},
        {"entity": "PER", "start": 4, "end": 7, "text": "c d"}]


@needs_data
def test_stsb_gate_passes_the_model_itself_and_fails_a_broken_pooling():
    loaded = load_model("bert-tiny", "feature-extraction")
    data = load_task_data(f"stsb:{STSB}", "feature-extraction", loaded.tokenizer, 64, 40)
    assert data.size == 40 and len(data.items) <= 80
    reference = _reference_runner(loaded)
    cache = {}
    same = data.score(loaded.input_names, reference, reference, 64, 0.5, 0.98, cache, progress=False)
    assert same["status"] == "passed" and same["spearman_drop"] == 0 and same["min_cosine_to_fp32"] > 0.99999
    cls = Pooling("cls", True, "test")  # the wrong pooling: what a missed 1_Pooling/config.json exports
    loaded.pooling = cls
    broken = data.score(loaded.input_names, reference, _reference_runner(loaded), 64, 0.5, 0.98, cache, progress=False)
    assert broken["status"].startswith("failed") and "mean cosine to fp32" in broken["status"]


@needs_data
def test_token_gate_counts_words_and_fails_on_flipped_labels():
    loaded = load_model("distilbert-tiny", "token-classification")
    data = load_task_data(f"text:{WIKI}", "token-classification", loaded.tokenizer, 64, 20)
    reference = _reference_runner(loaded)
    cache = {}
    same = data.score(loaded.input_names, reference, reference, 64, 0.0, 0.97, cache, progress=False)
    assert same["status"] == "passed" and same["export"]["label_agreement"] == 1.0 and same["n_words"] > 200

    def flipped(feeds):  # labels of every other token swapped
        (logits,) = reference(feeds)
        logits = logits.copy()
        logits[:, ::2] = logits[:, ::2, ::-1]
        return [logits]

    bad = data.score(loaded.input_names, reference, flipped, None, 0.0, 0.97, cache, progress=False)
    assert bad["status"].startswith("failed: label agreement") and bad["export"]["label_agreement"] < 0.8
    with pytest.raises(UsageError, match="stsb:PATH gates feature-extraction exports, not token-classification"):
        load_task_data(f"stsb:{STSB}", "token-classification", loaded.tokenizer, 64, 20)


@pytest.mark.heavy  # an export through the CLI
@needs_data
def test_cli_exports_a_sentence_transformers_folder_with_its_pooling_and_the_stsb_gate(tmp_path):
    from pocketbert.cli import main

    folder = st_folder(tmp_path / "st", mode="cls", normalize=True)
    out = tmp_path / "out"
    assert main(["export", "--model", str(folder), "--task", "feature-extraction", "--target", "onnx",
                 "--precision", "fp32", "--seq-len", "64", "--eval-data", f"stsb:{STSB}", "--eval-questions", "30",
                 "--out", str(out)]) == 0
    manifest = json.loads((out / "onnx-fp32" / "manifest.json").read_text())
    assert manifest["outputs"] == [{"name": "sentence_embedding", "dtype": "float32", "shape": ["batch", 64]}]
    assert manifest["notes"]["pooling"]["mode"] == "cls" and manifest["notes"]["pooling"]["normalize"] is True
    gate = manifest["task_eval"]
    assert gate["status"] == "passed" and gate["n_rows"] == 30 and gate["min_cosine_to_fp32"] > 0.99999

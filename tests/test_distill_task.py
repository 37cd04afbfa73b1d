"""Task distillation on tiny synthetic tasks, its losses, and the evaluation metrics."""

import json
import random

import pytest
import torch
import torch.nn.functional as F

from distill.task import TaskConfig, distill_task, load_task_teacher, task_losses
from pocketbert.glue import pearson_spearman
from pocketbert.squad import Question, Window, normalize_answer, predictions
from pocketbert.squad import scores as squad_scores
from pocketbert.common import UsageError
from pocketbert.models import _COMMON_WORDS


def _tsv(path, header, rows):
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return path


def _sst(path, n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        word = "good" if label else "bad"  # a one-word synthetic sentiment task
        rest = " ".join(rng.choice(["the", "film", "was", "music", "very", "team"]) for _ in range(5))
        rows.append((f"{rest} {word} {rest}", label))
    return _tsv(path, ["sentence", "label"], rows)


def test_metrics_official_normalisation():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    s = squad_scores({"q1": "the Denver Broncos", "q2": "Carolina"},
                     {"q1": ["Denver Broncos"], "q2": ["Carolina Panthers", "Panthers"]})
    assert s["exact_match"] == 50.0
    assert abs(s["f1"] - 100 * (1.0 + 2 / 3) / 2) < 1e-9  # q2: P=1, R=1/2 -> F1=2/3
    ps = pearson_spearman([1, 2, 3, 4], [1, 3, 2, 4])
    assert abs(ps["spearman"] - 0.8) < 1e-9


def test_task_losses_reference():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    batch = {"label": torch.tensor([0, 2, 1, 1])}
    ce, kd = task_losses("sequence-classification", (s,), (t,), batch, 2.0)
    torch.testing.assert_close(ce, F.cross_entropy(s, batch["label"]))
    ref = F.kl_div(F.log_softmax(s / 2, -1), F.softmax(t / 2, -1), reduction="batchmean") * 4
    torch.testing.assert_close(kd, ref)
    batch = {"label": torch.tensor([0.5, 1.0, 2.0, 4.0])}
    mse, kd = task_losses("regression", (s[:, :1],), (t[:, :1],), batch, 2.0)
    torch.testing.assert_close(mse, F.mse_loss(s[:, 0], batch["label"]))
    torch.testing.assert_close(kd, F.mse_loss(s[:, 0], t[:, 0]))


def test_squad_span_decoding():
    mask = [False, False, False, True, True, True, False]
    win = Window("q", {"input_ids": [2, 10, 3, 11, 12, 13, 3]}, mask,
                 [(0, 0), (0, 0), (0, 0), (0, 3), (4, 9), (10, 14), (0, 0)])
    start = [9.0, 9.0, 0, 1.0, 5.0, 0, 9.0]  # best legal start: token 4
    end = [9.0, 0, 0, 0, 1.0, 4.0, 9.0]  # best legal end: token 5
    preds = predictions([win], [(start, end)], {"q": Question("q", "?", "The quick fox")})
    assert preds == {"q": "quick fox"}
    # an end before the start, or a span longer than the cap, is never chosen
    far = [0.0, 0, 0, 9.0, 0, 0, 0], [0.0, 0, 0, 0, 0, 0, 0]
    assert predictions([win], [far], {"q": Question("q", "?", "The quick fox")}) == {"q": "The"}


def test_classification_distillation_learns_synthetic_task(tmp_path):
    train, dev = _sst(tmp_path / "train.tsv", 96, 0), _sst(tmp_path / "dev.tsv", 40, 1)
    cfg = TaskConfig(task="sequence-classification", teacher="bert-tiny", train_file=str(train),
                     eval_file=str(dev), alpha_kd=0.1, batch_size=16, epochs=6, lr=3e-3, max_len=32,
                     out=str(tmp_path / "o"), progress=False)
    m = distill_task(cfg)
    assert m["student"]["accuracy"] >= 0.9, m
    # the teacher's score is its own: the same (seeded, untrained) teacher run here on the dev rows
    teacher, tok, _ = load_task_teacher(cfg)
    rows = [line.split("\t") for line in dev.read_text().splitlines()[1:]]
    feeds = tok([r[0] for r in rows], padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        predicted = teacher(**feeds).logits.argmax(-1).tolist()
    assert m["teacher"]["accuracy"] == pytest.approx(
        sum(p == int(r[1]) for p, r in zip(predicted, rows)) / len(rows))
    from transformers import AutoModelForSequenceClassification

    s = AutoModelForSequenceClassification.from_pretrained(tmp_path / "o" / "student")
    assert s.config.model_type == "distilbert" and s.config.num_labels == 2


def test_kd_term_pulls_student_to_teacher(tmp_path):
    train = _tsv(tmp_path / "sts.tsv", ["sentence1", "sentence2", "score"],
                 [("a man plays", "a man is playing", 4.5), ("the cat", "music team", 0.5)] * 16)
    m = distill_task(TaskConfig(task="regression", teacher="bert-tiny", train_file=str(train),
                                eval_file=str(train), alpha_task=0.0, alpha_kd=1.0, batch_size=8,
                                max_steps=30, lr=3e-3, max_len=32, out=str(tmp_path / "o"),
                                progress=False))
    assert m["final_loss"]["kd"] < 0.05, m
    assert {"pearson", "spearman"} <= set(m["student"])


def _squad(path, n, seed):
    """A SQuAD v1.1 file where the answer is the one word of a small answer set in a context of
    filler words: learnable by a one-layer student in a few steps, unanswerable by chance."""
    rng = random.Random(seed)
    words = list(_COMMON_WORDS)
    answers, filler = words[40:52], words[:40]
    paragraphs = []
    for i in range(n):
        a = rng.choice(answers)
        left = " ".join(rng.choice(filler) for _ in range(rng.randint(2, 12)))
        right = " ".join(rng.choice(filler) for _ in range(rng.randint(2, 12)))
        paragraphs.append({"context": f"{left} {a} {right}", "qas": [{
            "id": f"{seed}-{i}", "question": "which one is it",
            "answers": [{"text": a, "answer_start": len(left) + 1}]}]})
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    return path


def test_question_answering_student_learns_held_out_spans(tmp_path):
    """The distilled QA student beats its untrained self (the copied student at step 0) by 40+ F1
    points on held-out questions (about 12 -> 100 seen)."""
    from distill.task import build_task_student, evaluate_task, load_task_data, load_task_teacher

    train, dev = _squad(tmp_path / "train.json", 48, 0), _squad(tmp_path / "dev.json", 32, 1)
    cfg = TaskConfig(task="question-answering", teacher="bert-tiny", train_file=str(train),
                     eval_file=str(dev), alpha_kd=0.1, batch_size=16, max_steps=6, lr=5e-3,
                     max_len=64, doc_stride=16, out=str(tmp_path / "o"), progress=False)
    m = distill_task(cfg)
    teacher, tok, teacher_type = load_task_teacher(cfg)
    untrained = build_task_student(cfg, teacher, teacher_type, None)[0].eval()
    before = evaluate_task(cfg, untrained, "distilbert", load_task_data(cfg, str(dev), tok, train=False))
    assert m["student"]["n"] == before["n"] == 32
    assert m["student"]["f1"] >= before["f1"] + 40, (before, m["student"])
    from transformers import AutoModelForQuestionAnswering

    s = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "o" / "student")
    assert s.config.model_type == "distilbert"


def test_task_bad_input(tmp_path):
    bad = _tsv(tmp_path / "x.tsv", ["foo", "label"], [("a", 1)])
    with pytest.raises(UsageError, match="sentence"):
        distill_task(TaskConfig(train_file=str(bad), out=str(tmp_path / "o"), progress=False))
    three = _tsv(tmp_path / "y.tsv", ["sentence", "label"], [("a", 0), ("b", 1), ("c", 2)])
    with pytest.raises(UsageError, match="teacher has 2 labels"):
        distill_task(TaskConfig(train_file=str(three), out=str(tmp_path / "o"), progress=False))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="SQuAD"):
        distill_task(TaskConfig(task="question-answering", train_file=str(tmp_path / "bad.json"),
                                out=str(tmp_path / "o"), progress=False))

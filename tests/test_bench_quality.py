"""Answer quality next to latency: a bench on a scored SQuAD workload keeps every answer, scores
it once (official EM/F1) into the record, and the report puts F1 beside latency and names each
smaller model's speed-up at its share of the largest model's F1."""

import json
import random

import pytest

from bench.harness import BenchConfig, run_bench
from bench.records import load_records
from bench.report import speed_at_quality
from pocketbert import squad
from pocketbert.models import _COMMON_WORDS

pytestmark = pytest.mark.heavy  # a SQuAD bench run, scored


def _squad(path, n, seed):
    rng = random.Random(seed)
    words = list(_COMMON_WORDS)
    paragraphs = []
    for i in range(n):
        a = rng.choice(words[40:52])
        left = " ".join(rng.choice(words[:40]) for _ in range(rng.randint(2, 12)))
        paragraphs.append({"context": f"{left} {a} the end", "qas": [{
            "id": f"q{i}", "question": "which one is it",
            "answers": [{"text": a, "answer_start": len(left) + 1}]}]})
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    return path


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    data = _squad(root / "dev.json", 6, 0)
    cfg = BenchConfig(models=["distilbert-tiny", "bert-tiny"], runtimes=["pytorch"], precisions=["fp32"],
                      shapes=["dynamic"], workloads=[f"squad:{data}"], seq_len=32, threads=1, warmup=0,
                      out=root, run_id="q", quiet=True)
    return data, load_records([run_bench(cfg, log=lambda *a: None)])


def test_records_keep_every_answer_and_its_official_score(scored_run):
    data, records = scored_run
    golds = {q.id: q.gold_texts for q in squad.read_squad(data)}
    assert len(records) == 2
    for r in records:
        assert r.status == "ok", r.reason
        assert len(r.answers) == r.n_items == 6
        want = squad.scores(dict(zip(r.item_ids, r.answers)), golds)  # scored here, independently
        assert r.answer_quality.to_dict() == {"metric": "squad", **want}


def test_report_names_speed_at_answer_quality(scored_run):
    _, records = scored_run
    records = [r.replace(answer_quality=r.answer_quality.model_copy(  # fixed scores: the arithmetic checked exactly
        update={"f1": 50.0 if r.model == "bert-tiny" else 40.0})) for r in records]
    line = speed_at_quality(records)
    small, big = sorted(records, key=lambda r: r.parameters.total)
    speed = big.total_model_s / small.total_model_s
    assert line.startswith("**Speed at answer quality:**")
    assert f"{small.model} is {speed:.2f}x faster than {big.model} at 80.0% of its F1" in line
    assert speed_at_quality([records[0]]) is None  # one model: nothing to compare


def test_headline_keeps_the_trade_off_when_every_record_is_noisy(scored_run):
    from bench.report import headline

    _, records = scored_run
    records = [r.replace(trust=r.trust.model_copy(update={"noisy": True, "reasons": ["steal 50%"]}))
               for r in records]  # as the run judged it
    lines = headline(records)
    assert any(x.startswith("No trusted record") for x in lines)
    assert any(x.startswith("**Speed at answer quality (from noisy records") for x in lines), lines

"""Statistics from raw samples (hand-computed), FLOP counts, and records that round-trip."""

import json
import math

import pytest

from bench.flops import forward_flops
from bench.records import derive, load_records, record_name
from bench.stats import percentile, summarize, trimmed_mean
from pocketbert.common import UsageError
from pocketbert.contracts import Record


def test_percentiles_interpolate_linearly():
    xs = [10.0, 1.0, 4.0, 3.0, 2.0]  # sorted: 1 2 3 4 10
    assert percentile(xs, 50) == 3.0
    assert percentile(xs, 90) == pytest.approx(4 + 0.6 * 6)  # pos 3.6 -> 4 + 0.6 * (10 - 4)
    assert percentile(xs, 99) == pytest.approx(4 + 0.96 * 6)
    assert percentile(xs, 0) == 1.0 and percentile(xs, 100) == 10.0
    assert math.isnan(percentile([], 50))


def test_trimmed_mean_drops_ten_percent_each_side():
    xs = list(range(1, 11)) + [1000.0]  # 11 samples: k = 1 dropped at each end
    assert trimmed_mean(xs) == pytest.approx(sum(range(2, 11)) / 9)
    assert trimmed_mean([5.0, 7.0]) == 6.0  # k = 0: plain mean


def test_summarize_by_hand():
    s = summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert s["count"] == 8 and s["total"] == 40.0 and s["mean"] == 5.0
    assert s["std"] == pytest.approx(math.sqrt(32 / 7))  # sample std
    assert s["min"] == 2.0 and s["max"] == 9.0
    assert s["p50"] == 4.5
    assert summarize([]) == {"count": 0}


def test_flops_from_shapes():
    cfg = {"n_layers": 1, "dim": 4, "hidden_dim": 8}
    # per layer: 2*S*4*h*h + 2*S*2*h*I + 4*S*S*h, head 2*S*h*2 at S=3, h=4, I=8
    expected = 2 * 3 * 4 * 16 + 2 * 3 * 2 * 4 * 8 + 4 * 9 * 4 + 2 * 3 * 4 * 2
    assert forward_flops(cfg, 3) == expected
    bert = {"num_hidden_layers": 12, "hidden_size": 768, "intermediate_size": 3072}
    distil = {"n_layers": 6, "dim": 768, "hidden_dim": 3072}
    assert forward_flops(bert, 384) == pytest.approx(2 * forward_flops(distil, 384), rel=1e-3)


def _record(**kw):
    rec = {"schema": "pocketbert-bench/1", "run_id": "r", "status": "ok", "model": "distilbert-tiny", "runtime": "onnx",
           "precision": "fp32", "workload": "synthetic", "shape": "fixed", "threads": 2, "warmup": 1,
           "machine": {"hostname": "h"}, "latency_ms": [1.0, 2.0, 3.0], "tokenize_ms": [0.5, 0.5, 0.5],
           "postprocess_ms": [0.1, 0.1, 0.1], "tokens": {"real": 30, "fed": 60}, "flops_total": 6_000_000_000,
           "gemm_peak_gflops": 2000.0, "harness_overhead": {"timed_loop_s": 1.01, "bare_loop_s": 1.0, "null_loop_s": 0.00006}}
    rec.update(kw)
    return derive(Record.from_dict(rec))


def test_record_derivations_and_round_trip(tmp_path):
    rec = _record()
    assert rec.total_model_s == pytest.approx(0.006)
    assert rec.stats.end_to_end_ms.mean == pytest.approx(2.6)
    assert rec.throughput_items_per_s == pytest.approx(500)
    assert rec.tokens.padding_waste == 0.5
    assert rec.achieved_gflops == pytest.approx(1000) and rec.fraction_of_peak == pytest.approx(0.5)
    assert rec.harness_overhead.timed_vs_bare == pytest.approx(0.01)
    assert rec.harness_overhead.overhead_fraction == pytest.approx(0.01)  # 0.06 ms per 6 ms of model time
    path = tmp_path / record_name(rec)
    assert path.name == "distilbert-tiny-onnx-fp32-synthetic-fixed.json"
    path.write_text(rec.to_json())
    (tmp_path / "notes.json").write_text(json.dumps({"unrelated": True}))  # ignored: not a record
    [back] = load_records([tmp_path])
    # a Record, located, checked against the contract, nothing lost
    assert isinstance(back, Record) and back.source == str(path)
    assert back.to_dict() == rec.to_dict() == json.loads(path.read_text())
    assert derive(back) == back  # statistics are a pure function of the raw samples


def test_load_records_errors(tmp_path):
    with pytest.raises(UsageError, match="no benchmark records"):
        load_records([tmp_path])
    with pytest.raises(UsageError, match="not found"):
        load_records([tmp_path / "missing"])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_records([tmp_path])

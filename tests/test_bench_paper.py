"""Paper mode's side-by-side tables, from hand-made records."""

import re

from bench.paper import paper_markdown
from bench.records import derive
from pocketbert.contracts import Record


def _rec(model, runtime, latency, params, workload="stsb"):
    return derive(Record(run_id="r", **{"status": "ok", "model": model, "runtime": runtime, "precision": "fp32", "shape": "dynamic",
                   "workload": workload, "n_items": len(latency), "parameters": {"total": params, "non_embedding": 1},
                   "latency_ms": latency, "tokenize_ms": [0.0] * len(latency), "postprocess_ms": [0.0] * len(latency),
                   "tokens": {"real": 1, "fed": 1}, "threads": 2, "machine": {"cpu_model": "cpu", "physical_cores": 2}}))


def test_table3_and_qa_ratios():
    table3 = [_rec("bert-base", "onnx", [1000.0, 1000.0], 109_500_000),
              _rec("distilbert-base", "onnx", [500.0, 500.0], 66_400_000),
              _rec("distilbert-base", "pytorch", [1.0], 66_400_000)]  # no BERT partner: no row
    qa = [_rec("bert-base", "onnx", [300.0, 100.0], 1, "squad"), _rec("distilbert-base", "onnx", [100.0, 100.0], 1, "squad")]
    text = re.sub(" +", " ", paper_markdown(table3, qa))  # cells padded to their column's width
    assert "| paper (CPU, 2019) | PyTorch | fp32 | – | 1500 | 110M | 668 | 66M | 410 | 0.61 | 1.63x |" in text
    assert "| ours (stsb) | onnx | fp32 | dynamic | 2 | 109.5M | 2.0 | 66.4M | 1.0 | 0.50 | 2.00x |" in text
    assert "| ours (squad) | onnx | fp32 | dynamic | 2 | 200.0 | 200.0 | 100.0 | 100.0 | 100% |" in text
    assert "pytorch" not in text


def test_noisy_records_are_left_out_of_the_ratios():
    bert = _rec("bert-base", "onnx", [1000.0, 1000.0], 109_500_000)
    distil = _rec("distilbert-base", "onnx", [1520.0, 1520.0], 66_400_000)  # measured while shared
    text = re.sub(" +", " ", paper_markdown([bert, derive(distil.replace(trust={"other_cpu_cores": 1.9}))], []))
    assert "| ours (stsb) | onnx |" not in text  # not the paper's claim reversed
    assert "Left out as noisy" in text and "other processes used 1.90 cores" in text

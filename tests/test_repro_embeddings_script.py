"""scripts/repro_embeddings.py's table: each file's figures from its own record, the speed-up of our
fastest file over optimum's fastest per sentence (a pair item is two sentences)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.repro_embeddings import tables  # noqa: E402


def _record(run: Path, bundle: str, pair_ms: list[float]) -> None:
    rec = {"bundle": bundle, "status": "ok", "latency_ms": pair_ms, "n_model_calls": 2 * len(pair_ms),
           "n_items": len(pair_ms), "stats": {"latency_ms": {"p50": sorted(pair_ms)[len(pair_ms) // 2]}},
           "answer_quality": {"spearman": 90.0}, "trust": {"noisy": False}, "threads": 2, "rounds": 3,
           "machine": {"cpu_model": "cpu", "load_avg_1m": 0.1}}
    (run / (Path(bundle).parent.name + Path(bundle).name + ".json")).write_text(json.dumps(rec))


def test_table_pairs_each_file_with_its_record_and_compares_the_fastest(tmp_path):
    ours, peer, slow = "/w/pocketbert/executorch-int8", "/w/optimum-avx2/model_quantized.onnx", "/w/optimum-avx2-pc/model_quantized.onnx"
    _record(tmp_path, ours, [10.0, 12.0, 14.0])  # 6 ms per sentence on average
    _record(tmp_path, peer, [24.0, 24.0, 24.0])  # 12 ms
    _record(tmp_path, slow, [48.0, 48.0, 48.0])  # 24 ms: optimum's slower file is not its best
    quality = {"n_sentences": 6, "n_pairs": 3, "sentence_transformers": {"spearman": 80.0},
               ours: {"label": "pocketbert executorch-int8", "min_cosine": 0.99, "mean_cosine": 0.995, "spearman": 79.9},
               peer: {"label": "optimum optimum-avx2", "min_cosine": 0.9, "mean_cosine": 0.96, "spearman": 79.5},
               slow: {"label": "optimum optimum-avx2-pc", "min_cosine": 0.9, "mean_cosine": 0.96, "spearman": 79.5}}
    text = tables(quality, tmp_path)
    assert "| pocketbert executorch-int8 | 0.9900000 | 0.9950000 | 79.90 | 6.00 | 6.00 | 90.00 | ok |" in text
    assert "| optimum optimum-avx2-pc | 0.9000000 | 0.9600000 | 79.50 | 24.00 | 24.00 |" in text
    assert "vs optimum optimum-avx2 12.00: **2.00x**" in text

"""One benchmark question on disk: the worker spec (carrying its items), the worker's result and the
record, nothing else (issue 32: the items file is folded into the spec)."""

import contextlib
import json
import tempfile
from pathlib import Path

import pytest


@pytest.mark.heavy
def test_one_question_writes_its_spec_result_and_record_and_nothing_else(tmp_path, monkeypatch):
    """A real local run (bert-tiny on PyTorch, one item): every temporary folder made during the run is
    listed before it goes, with the run folder's JSON files."""
    from bench.harness import BenchConfig, run_bench

    made, real = [], tempfile.TemporaryDirectory

    @contextlib.contextmanager
    def watched(*args, **kwargs):
        with real(*args, **kwargs) as folder:
            yield folder
            for p in sorted(Path(folder).rglob("*.json")):
                made.append((p.name, json.loads(p.read_text())))

    monkeypatch.setattr(tempfile, "TemporaryDirectory", watched)
    cfg = BenchConfig(models=["bert-tiny"], runtimes=["pytorch"], precisions=["fp32"], shapes=["fixed"],
                      seq_len=32, limit=1, threads=1, warmup=0, out=tmp_path / "res", run_id="r", quiet=True,
                      report=False, pace_retries=0)
    out = run_bench(cfg, log=lambda *a: None)
    records = sorted(p.name for p in out.glob("*.json"))
    assert records == ["bert-tiny-pytorch-fp32-synthetic-fixed.json"]
    assert [name for name, _ in made] == ["result.json", "spec.json"]  # the worker's folder, and no items file
    spec = dict(made)["spec.json"]
    assert len(spec["items"]) == 1 and spec["items"][0]["features"][0]["input_ids"]  # the items travel in it
    assert len(dict(made)["result.json"]["latency_ms"]) == 1

"""The seams: typed contracts and their versions, the bench's bundle cache, CoreML's enumerated
lengths, paper mode end to end, and the registries' one-line lookups."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pocketbert.common import UsageError
from pocketbert.contracts import Manifest, Record, WorkerResult, WorkerSpec, manifest_digest

MANIFEST = dict(format=Manifest.SCHEMA, target="onnx", precision="fp32", task="question-answering",
                model_type="bert", source="preset:bert-tiny", model_file="model.onnx", seq_len=32, seq_lens=[32],
                dynamic_seq=True, inputs=[{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"]}],
                outputs=[{"name": "start_logits", "dtype": "float32", "shape": ["batch", "seq"]}],
                files={"model.onnx": {"bytes": 3, "sha256": "ab" * 32}})
MANIFEST["manifest_sha256"] = manifest_digest(MANIFEST)  # as the exporter writes it (issue 20)
RECORD = dict(schema=Record.SCHEMA, run_id="r", model="m", runtime="onnx", precision="fp32", workload="synthetic",
              shape="fixed", latency_ms=[1.0, 2.0], tokenize_ms=[0.1, 0.1], postprocess_ms=[0.0, 0.0])


@pytest.mark.parametrize("cls, data", [(Manifest, MANIFEST), (Record, RECORD),
                                       (WorkerSpec, {"schema": WorkerSpec.SCHEMA, "threads": 2, "items": [
                                           {"id": "q", "features": [{"input_ids": [101, 102]}], "tokenize_ms": 0.1}]}),
                                       (WorkerResult, {"schema": WorkerResult.SCHEMA, "latency_ms": [1.0],
                                                       "postprocess_ms": [0.1], "trust": {"steal_pct": 0.2}})])
def test_contracts_round_trip_and_name_both_versions(cls, data):
    obj = cls.from_dict(dict(data))
    assert cls.from_json(obj.to_json()) == obj
    key = cls.SCHEMA_KEY
    with pytest.raises(UsageError) as e:
        cls.from_dict({**data, key: data[key][:-1] + "9"}, "x.json")
    msg = str(e.value)
    assert "\n" not in msg and data[key][:-1] + "9" in msg and cls.SCHEMA in msg


def test_record_and_manifest_reject_wrong_types_in_one_line():
    with pytest.raises(UsageError, match="latency_ms must be a list of numbers"):
        Record.from_dict({**RECORD, "latency_ms": ["1"]})
    with pytest.raises(UsageError, match="sample counts differ"):
        Record.from_dict({**RECORD, "tokenize_ms": [0.1]})
    with pytest.raises(UsageError, match="model_file 'x/../model.onnx' is not one of the bundle's files"):
        Manifest.from_dict({**MANIFEST, "model_file": "x/../model.onnx"})
    with pytest.raises(UsageError, match="lacks target"):
        Manifest.from_dict({k: v for k, v in MANIFEST.items() if k != "target"})


def test_coreml_enumerated_lengths():
    from export.targets.coreml import coreml_seq_lens

    assert coreml_seq_lens(384, None) == [128, 256, 384]
    assert coreml_seq_lens(200, None) == [128, 200]
    assert coreml_seq_lens(64, None) == [32, 64]  # never a single shape (coremltools folds it)
    assert coreml_seq_lens(256, [64, 128]) == [64, 128, 256]  # --seq-len is always enumerated


def test_bundle_cache_is_reused_until_its_inputs_change(tmp_path):
    from bench.bundles import ensure_bundle
    from pocketbert.models import generated_vocab

    logs: list[str] = []
    args = (tmp_path, "bert-tiny", "question-answering", "onnx", "fp32", 16)
    first = ensure_bundle(*args, tokenizer=None, log=logs.append)
    made = (first / "model.onnx").stat().st_mtime_ns
    assert ensure_bundle(*args, tokenizer=None, log=logs.append) == first
    assert (first / "model.onnx").stat().st_mtime_ns == made and len(logs) == 1  # reused, not re-exported
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(generated_vocab(1024)) + "\n")
    ensure_bundle(*args, tokenizer=str(vocab), log=logs.append)  # another tokenizer: stale
    assert any("stale (tokenizer None" in m for m in logs)
    manifest = {**json.loads((first / "manifest.json").read_text()), "git_revision": "0" * 40}
    manifest["manifest_sha256"] = manifest_digest(manifest)  # as another exporter revision wrote it
    (first / "manifest.json").write_text(json.dumps(manifest))
    logs.clear()
    ensure_bundle(*args, tokenizer=str(vocab), log=logs.append)  # made by another exporter revision
    assert any("made by exporter revision 0000" in m for m in logs)
    assert not list(first.parent.glob(".export-*"))  # no staging folder left behind


class CannedDevice:
    """Answers like a machine where a model's latency is proportional to its layer count."""

    name = "canned"

    def info(self):
        return {"device": "canned", "hostname": "canned", "cpu_model": "test", "physical_cores": 2,
                "load_avg_1m": 0.0}

    def available(self, runtime):
        return True, ""

    def close(self):
        pass

    def run_worker(self, spec, timeout_s=None):
        n = len(spec.items)
        ms = 12.0 if spec.model == "bert-base" else 6.0
        return WorkerResult(load_ms=1.0, first_inference_ms=2.0, latency_ms=[ms] * n, postprocess_ms=[0.1] * n,
                            loop_s=0.01, bare_loop_s=None, threads_effective=2, baseline_rss_mb=10.0,
                            peak_rss_mb=20.0, model_bytes=1000)


@pytest.mark.heavy
def test_paper_mode_writes_both_studies_and_the_side_by_side_tables(tmp_path):
    from bench.config import BenchConfig
    from bench.paper import run_paper

    cfg = BenchConfig(runtimes=["pytorch"], precisions=["fp32"], shapes=["dynamic"], limit=2, threads=2,
                      out=tmp_path, run_id="p", quiet=True)
    root = run_paper(cfg, stsb=None, squad=None, log=lambda *a: None, device=CannedDevice())
    assert sorted(p.name for p in (root / "table3").glob("*.json")) == [
        "bert-base-pytorch-fp32-synthetic-dynamic.json", "distilbert-base-pytorch-fp32-synthetic-dynamic.json"]
    text = re.sub(" +", " ", (root / "paper.md").read_text())  # cells padded to their column's width
    assert "| ours (synthetic) | pytorch | fp32 | dynamic | 2 | 108.9M | 0.0 | 66.4M | 0.0 | 0.50 | 2.00x |" in text
    assert "| ours (synthetic) | pytorch | fp32 | dynamic | 2 | 12.0 | 12.0 | 6.0 | 6.0 | 100% |" in text
    assert (root / "report.md").is_file()


def test_lookups_list_the_valid_names():
    from bench.devices import open_device
    from pocketbert.backends import get_runtime

    with pytest.raises(UsageError, match="unknown runtime 'tflite': choose one of .*executorch.*onnx"):
        get_runtime("tflite")
    with pytest.raises(UsageError, match="unknown device kind 'usb': choose one of .*local"):
        open_device("usb://x")
    assert open_device("local").name == "local"


def test_worker_runs_on_numpy_and_the_runtime_alone(tmp_path):
    """What a board needs: the worker imports no torch, transformers or tqdm at module level."""
    import subprocess
    import sys

    code = ("import sys; import bench.worker, bench.workloads, pocketbert.backends.onnx, pocketbert.squad; "
            "print(sorted(m for m in ('torch', 'transformers', 'tqdm', 'psutil', 'executorch') if m in sys.modules))")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.strip() == "[]", out.stderr

"""scripts/repro_qa_distill.py resumes by folder: what it reuses must come from the same weights."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("repro_qa_distill", ROOT / "scripts" / "repro_qa_distill.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_bundles_of_other_weights_are_exported_again_not_reused(tmp_path):
    repro = _script()
    model = tmp_path / "students" / "l3" / "student"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights of the first run")
    root = tmp_path / "bundles" / "l3"
    (root / "fp32" / "onnx-fp32").mkdir(parents=True)
    (root / repro.SOURCE_STAMP).write_text(repro.weights_sha256(model) + "\n")

    repro.stale_bundles(root, model, "l3")  # same weights: kept
    assert (root / "fp32" / "onnx-fp32").is_dir()

    (model / "model.safetensors").write_bytes(b"weights of a retrained student")
    repro.stale_bundles(root, model, "l3")
    assert not root.exists()

    (root / "fp32").mkdir(parents=True)  # bundles without a stamp (an older script): not trusted either
    repro.stale_bundles(root, model, "l3")
    assert not root.exists()


def test_the_benchmark_is_run_again_when_its_bundles_changed(tmp_path, monkeypatch):
    repro = _script()
    calls = []
    monkeypatch.setattr(repro, "pocketbert", lambda *a: calls.append(a) or 0)
    (tmp_path / "bundles" / "l3").mkdir(parents=True)
    (tmp_path / "bundles" / "l3" / repro.SOURCE_STAMP).write_text("new\n")
    run = tmp_path / "bench" / "qa"
    run.mkdir(parents=True)
    (run / "old-record.json").write_text(json.dumps({"status": "ok"}))
    (run / "sources.json").write_text(json.dumps({"l3": "old"}))
    args = type("A", (), {"report_only": False, "bench_questions": 3, "rounds": 1,
                          "optimum_venv": tmp_path / "none"})()
    repro.bench({"l3": {"fp32": {"path": "b"}}}, tmp_path, tmp_path, args)
    assert len(calls) == 1 and not (run / "old-record.json").exists()


def test_only_gated_bundles_of_the_student_are_offered_to_the_app(tmp_path):
    repro = _script()
    root = tmp_path / "bundles" / "l3"
    bundles = {"l3": {
        "executorch-fp32": {"path": str(root / "fp32" / "executorch-fp32"), "gate": "passed"},
        "onnx-fp32": {"path": str(root / "fp32" / "onnx-fp32"), "gate": "passed"},
        "executorch-int8": {"path": str(root / "executorch-int8" / "executorch-int8"), "gate": "passed"},
        "onnx-int8": {"path": str(root / "onnx-int8-ungated" / "onnx-int8"), "gate": "failed"},
        "onnx-int8-guided": {"path": str(root / "onnx-int8-guided-ungated" / "onnx-int8"), "gate": "failed"},
    }, "teacher": {"fp32": {"path": str(tmp_path / "bundles" / "teacher" / "fp32" / "onnx-fp32"), "gate": "passed"}}}
    command = repro.app_command(bundles)
    assert command == f"pocketbert android bundle {root / 'executorch-int8'} {root / 'fp32'}"
    assert repro.app_command({"teacher": bundles["teacher"]}) is None

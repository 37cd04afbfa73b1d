"""Files written by earlier pocketbert versions still read (checked-in samples, made by those versions):
bundle manifests of pocketbert-bundle/1 (no delegation) and /2, and pocketbert-bench/1 records (a
plain one, one with rounds and a per-operator profile, a skipped one), through the same readers the
bench and the report use."""

import json
import shutil
from pathlib import Path

import pytest

from bench.records import load_records
from bench.report import render_report
from export.bundle import read_manifest
from pocketbert.contracts import Delegation, FileEntry, Manifest, Record, TensorSpec

SAMPLES = Path(__file__).parent / "data" / "contracts"


@pytest.mark.parametrize("version", ["1", "2"])
def test_every_manifest_version_reads(version):
    path = SAMPLES / f"manifest-pocketbert-bundle-{version}.json"
    m = Manifest.read(path)
    raw = json.loads(path.read_text())
    assert m.format == raw["format"] == f"pocketbert-bundle/{version}"
    assert (m.target, m.precision, m.task, m.model_type, m.seq_len) == ("onnx", "fp32", "question-answering", "bert", 64)
    assert m.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    assert m.files[m.model_file].bytes == raw["files"]["model.onnx"]["bytes"]
    assert (m.delegation is None) == (version == "1")
    if m.delegation is not None:
        assert m.delegation.delegated_ops == raw["delegation"]["delegated_ops"]


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_bundle_reads_as_its_manifest_model_with_typed_parts(version, tmp_path):
    """What every reader downstream gets from read_manifest: the Manifest itself (attributes, typed
    files, tensors and delegation), not a dict of it, for every version."""
    shutil.copy(SAMPLES / f"manifest-pocketbert-bundle-{version}.json", tmp_path / "manifest.json")
    m = read_manifest(tmp_path, verify=False)
    assert isinstance(m, Manifest) and m == Manifest.read(tmp_path / "manifest.json")
    assert isinstance(m.files[m.model_file], FileEntry) and len(m.files[m.model_file].sha256) == 64
    assert all(isinstance(t, TensorSpec) for t in m.inputs + m.outputs) and m.inputs[0].shape == ["batch", "seq"]
    assert m.delegation is None if version == "1" else isinstance(m.delegation, Delegation)


def test_every_record_sample_reads_and_reports(tmp_path):
    records = {Path(r.source).name: r for r in load_records([SAMPLES])}
    assert sorted(records) == ["record-pocketbert-bench-1-ok.json", "record-pocketbert-bench-1-rounds-profile.json",
                               "record-pocketbert-bench-1-skipped.json"]
    for name, rec in records.items():
        typed = Record.read(SAMPLES / name)
        assert typed.schema_ == "pocketbert-bench/1" and typed.status == rec.status
    ok = Record.read(SAMPLES / "record-pocketbert-bench-1-ok.json")
    assert ok.status == "ok" and len(ok.latency_ms) == ok.n_items == 1 and ok.stats.latency_ms.p50 > 0
    rounds = Record.read(SAMPLES / "record-pocketbert-bench-1-rounds-profile.json")
    assert rounds.rounds == 2 and len(rounds.rounds_latency_ms) == 2 and rounds.profile.tool == "onnxruntime profiler"
    assert Record.read(SAMPLES / "record-pocketbert-bench-1-skipped.json").reason == "coreml requires macOS"
    render_report([SAMPLES], tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "coreml requires macOS" in text and "onnx" in text


def test_records_load_as_typed_objects_and_write_back_unchanged():
    """load_records hands on Record objects (parts typed: stats, trust, machine...) located at their
    file; each writes back exactly the fields its file had (none lost, no nulls added), whatever a
    newer writer put in a part kept."""
    for rec in load_records([SAMPLES]):
        assert isinstance(rec, Record) and Path(rec.source).parent == SAMPLES
        raw = json.loads(Path(rec.source).read_text())
        assert {k: v for k, v in rec.to_dict().items() if k in raw} == raw
    ok = next(r for r in load_records([SAMPLES]) if r.status == "ok" and r.rounds == 1)
    assert ok.stats.complete and ok.stats.latency_ms.p50 == ok.stats.latency_ms.mean
    assert ok.trust.judged and ok.trust.other_cpu_cores > 0 and ok.machine.label == "local:vm"
    assert ok.machine.model_extra["memory_gb"] == 23.5 and ok.tokens.real == 64

"""Issue 20: nothing we read is trusted beyond what is checked, everything we write for people is
escaped, and no input kills the process.

- a manifest-field fuzz: every field of the Manifest contract, a wrong type and out-of-range values
  (a field added tomorrow fails `test_every_manifest_field_has_bad_values` until it has cases here);
  an edited manifest (right type, in range) fails the bundle's integrity check;
- a corrupt model file next to a valid bundle: one failed record, the bundle still runs;
- a report fuzz over hostile records: bad numbers are one line naming the file and field, exit 2;
  hostile text is escaped in report.md and results.csv;
- plugins that are missing, raise or are not Python: one line, --help still works.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

from pocketbert.cli import main
from pocketbert.common import UsageError
from pocketbert.contracts import Manifest, Record, manifest_digest

ROOT = Path(__file__).resolve().parent.parent


def _valid_manifest() -> dict:
    return Manifest(target="onnx", precision="fp32", task="question-answering", model_type="bert",
                    source="preset:bert-tiny", model_file="model.onnx", seq_len=64, seq_lens=[32, 64],
                    dynamic_seq=False, inputs=[{"name": "input_ids", "dtype": "int64", "shape": [1, 64]}],
                    outputs=[{"name": "start_logits", "dtype": "float32", "shape": ["batch", "seq"]}],
                    files={"model.onnx": {"bytes": 5, "sha256": "0" * 64}},
                    special_tokens={"pad_token_id": 0}, parameters={"total": 10}).to_dict()


# field -> values of the right JSON type that no export produces (out of range / malformed); an
# empty list: any value of the right type is fine (free text: escaped where it is shown)
OUT_OF_RANGE = {
    "target": ["", "a/b", "x" * 65, "on nx"],
    "precision": ["", "../fp32", "\n"],
    "task": ["", "question answering"],
    "model_type": ["", "<script>"],
    "source": [],
    "model_file": ["", "../model.onnx", ".hidden", "other.onnx"],
    "seq_len": [0, -1, 10 ** 9, 4097],
    "seq_lens": [[], [-1, 64], [0], [32], [64, 10 ** 9]],
    "dynamic_seq": [],
    "inputs": [[], [{"name": ""}], [{"name": "input_ids", "dtype": "int64", "shape": [1, -5]}],
               [{"name": "input_ids", "dtype": "complex128", "shape": [1, 64]}],
               [{"name": "input_ids", "dtype": "int64", "shape": [1, 10 ** 9]}],
               [{"name": "input_ids", "dtype": "int64", "shape": []}],
               [{"name": "input_ids", "dtype": "int64", "shape": [1, "any"]}]],
    "outputs": [[], [{"name": "s", "dtype": "float32", "shape": [0]}]],
    "files": [{"model.onnx": {"bytes": -1, "sha256": "0" * 64}},
              {"model.onnx": {"bytes": 5, "sha256": "not-a-digest"}},
              {"model.onnx": {"bytes": 5, "sha256": "0" * 64}, "../escape": {"bytes": 1, "sha256": "0" * 64}}],
    "label_names": [[1, 2]],
    "special_tokens": [{"pad_token_id": -1}, {"pad_token_id": 1.5}, {"pad_token_id": 10 ** 12}],
    "do_lower_case": [],
    "tokenizer_kind": ["", "wordpeace", 3],
    "parameters": [{"total": -1}, {"total": 10 ** 20}],
    "parity": [],
    "task_eval": [],
    "export_seconds": [-1.0, 1e400],
    "notes": [],
    "delegation": [{"fast_path": "XNNPACK delegate", "delegated_ops": -1, "other_ops": 1, "delegated_pct": 0.0},
                   {"fast_path": "XNNPACK delegate", "delegated_ops": 3, "other_ops": 1, "delegated_pct": 150.0},
                   {"fast_path": "XNNPACK delegate", "delegated_ops": 3, "other_ops": 1, "delegated_pct": 50.0},
                   {"fast_path": "XNNPACK delegate", "delegated_ops": 3, "other_ops": 1, "delegated_pct": 75.0,
                    "delegated_by_kind": {"linear": 2}},
                   {"fast_path": "fused", "delegated_ops": 3, "other_ops": 1, "delegated_pct": 75.0,
                    "providers": {"NNAPI": {"nodes_pct": 120.0}}},
                   {"fast_path": "fused", "delegated_ops": 3, "other_ops": 1, "delegated_pct": 75.0,
                    "providers": {"XNNPACK": {"nodes_pct": None}}},
                   {"fast_path": "XNNPACK delegate", "delegated_ops": 3}],
    "config": [],
    "versions": [],
    "git_revision": [],
    "created_utc": [],
    "manifest_sha256": ["abc"],
    "format": ["pocketbert-bundle/0", "pocketbert-bundle/3"],
}
WRONG_TYPE = {str: 12345, int: "12", float: "1.5", bool: "true", list: {"k": 1}, dict: [1, 2]}


def _wrong_type(hint):
    """A JSON value of another type than the field's (its first non-None type; a Literal: a number)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (
        typing.Union, types.UnionType) else [hint]
    base = typing.get_origin(args[0]) or args[0]
    base = int if base is typing.Literal else base
    return WRONG_TYPE[base if base in WRONG_TYPE else dict]


def _cases():
    out = []
    hints = typing.get_type_hints(Manifest)
    for name in Manifest.model_fields:
        if name != "format":
            out.append((name, "type", _wrong_type(hints[name])))
        out += [(name, "range", v) for v in OUT_OF_RANGE.get(name, [])]
    return out


CASES = _cases()


def test_every_manifest_field_has_bad_values():
    fields = set(Manifest.model_fields)
    assert fields == set(OUT_OF_RANGE), f"manifest fields without cases: {fields ^ set(OUT_OF_RANGE)}"
    Manifest.from_dict(_valid_manifest())  # the base case reads back


@pytest.mark.parametrize("field, kind, value", CASES, ids=[f"{f}-{k}-{i}" for i, (f, k, _) in enumerate(CASES)])
def test_manifest_field_fuzz_is_one_line_naming_the_field(field, kind, value, tmp_path):
    """Each bad value, written as the exporter would (its manifest_sha256 recomputed, so only the
    range checks stand between it and the worker), is refused in one line naming the field."""
    data = _valid_manifest()
    data[field] = value
    if field != "manifest_sha256":
        data["manifest_sha256"] = manifest_digest(data)
    with pytest.raises(UsageError) as e:
        Manifest.from_dict(data, "m.json")
    msg = str(e.value)
    assert "\n" not in msg and "m.json" in msg, msg
    named = {"format": "pocketbert-bundle", "model_file": "model_file"}.get(field, field)
    assert named in msg, msg


def test_a_version_1_manifest_still_reads_without_delegation():
    """pocketbert-bundle/1 manifests (before delegation coverage) read as they were written."""
    data = _valid_manifest()
    data["format"] = "pocketbert-bundle/1"
    data["manifest_sha256"] = manifest_digest(data)
    m = Manifest.from_dict(data, "m.json")
    assert m.delegation is None and m.format == "pocketbert-bundle/1"
    assert Manifest.from_dict(m.to_dict(), "m.json").to_dict() == m.to_dict()


@pytest.mark.parametrize("field, value", [("seq_len", 32), ("precision", "int8"), ("task", "fill-mask"),
                                          ("inputs", [{"name": "x", "dtype": "int64", "shape": [1, 64]}]),
                                          ("special_tokens", {"pad_token_id": 3})])
def test_an_edited_manifest_fails_the_bundle_integrity_check(field, value, tmp_path):
    from export.bundle import read_manifest

    data = _valid_manifest()
    data[field] = value if field != "seq_len" else 64  # seq_len: rewritten in place below
    if field == "seq_len":
        data["seq_lens"] = [32, 64]
        data["seq_len"] = 64
        data["manifest_sha256"] = manifest_digest(data)
        data["seq_lens"], data["seq_len"] = [16, 32], 32  # a hand edit, in range
    (tmp_path / "model.onnx").write_bytes(b"12345")
    data["files"]["model.onnx"]["sha256"] = __import__("hashlib").sha256(b"12345").hexdigest()
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(UsageError) as e:
        read_manifest(tmp_path)
    assert "edited after export" in str(e.value) and "\n" not in str(e.value)


def test_a_manifest_without_its_digest_is_refused(tmp_path):
    data = _valid_manifest()
    del data["manifest_sha256"]
    with pytest.raises(UsageError, match="no manifest_sha256"):
        Manifest.from_dict(data, "m.json")


# ------------------------------------------------------------------ a corrupt model next to a valid bundle

@pytest.fixture(scope="module")
def onnx_bundle(tmp_path_factory) -> Path:
    from export.pipeline import ExportConfig, run_export

    out = tmp_path_factory.mktemp("bundle") / "b"
    [bundle] = run_export(ExportConfig(model="bert-tiny", out=out, targets=["onnx"], seq_len=16,
                                       calibration_samples=2, parity_samples=2), log=lambda m: None)
    return bundle


@pytest.mark.parametrize("content", [os.urandom(4096), b"xxxxET12" + os.urandom(4096)],
                         ids=["random-bytes", "right-header-garbage-body"])
def test_a_corrupt_pte_is_one_failed_record_and_the_valid_bundle_still_runs(content, onnx_bundle, tmp_path, capsys):
    bad = tmp_path / "broken.pte"
    bad.write_bytes(content)
    rc = main(["bench", "--bundle", str(bad), str(onnx_bundle), "--shape", "dynamic", "--seq-len", "16",
               "--limit", "1", "--warmup", "0", "--quiet", "--no-report", "--out", str(tmp_path / "res"),
               "--run-id", "r"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    records = {r["runtime"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / "res" / "r").glob("*.json"))}
    assert records["onnx"]["status"] == "ok"
    failed = records["executorch"]
    assert failed["status"] == "failed" and "broken.pte" in failed["reason"] and "\n" not in failed["reason"]
    assert sum("broken.pte" in line for line in captured.out.splitlines()) == 1, captured.out


def test_only_corrupt_files_make_a_failed_run_exit_1(tmp_path, capsys):
    bad = tmp_path / "broken.pte"
    bad.write_bytes(os.urandom(2048))
    rc = main(["bench", "--bundle", str(bad), "--shape", "dynamic", "--seq-len", "16", "--quiet", "--no-report",
               "--out", str(tmp_path / "res"), "--run-id", "r"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "every run failed" in err[0], err
    assert [p.name for p in (tmp_path / "res").iterdir()] == ["r"]  # no bundles exported meanwhile


# ------------------------------------------------------------------ report fuzz

def _valid_record(**changes) -> dict:
    rec = Record(run_id="r", model="bert-tiny", runtime="onnx", precision="fp32", workload="synthetic",
                 shape="dynamic", latency_ms=[1.0, 2.0], tokenize_ms=[0.1, 0.1], postprocess_ms=[0.2, 0.2],
                 item_ids=["a", "b"], machine={"cpu_model": "x", "hostname": "h"}, threads=2, seq_len=16,
                 n_items=2, parameters={"total": 10, "non_embedding": 5}, tokens={"real": 10, "fed": 20},
                 load_ms=3.0, first_inference_ms=1.0, peak_rss_mb=100.0, runtime_rss_mb=10.0).to_dict()
    rec.update(changes)
    return rec


BAD_NUMBERS = [("latency_ms", [1.0, -2.0]), ("latency_ms", [1.0, math.inf]), ("latency_ms", [math.nan, 1.0]),
               ("tokenize_ms", [-0.1, 0.1]), ("postprocess_ms", [0.2, math.inf]), ("load_ms", -3.0),
               ("load_ms", math.nan), ("first_inference_ms", math.inf), ("peak_rss_mb", -1.0),
               ("threads_effective", 0), ("threads", -4), ("seq_len", -1), ("n_items", -2), ("rounds", 0),
               ("model_file_bytes", -10), ("gemm_peak_gflops", math.inf), ("tokens", {"real": -1, "fed": 20}),
               ("trust", {"cv": math.nan}), ("machine", {"hostname": "h", "load_avg_1m": math.inf}),
               ("rounds_latency_ms", [[1.0, -1.0]]), ("parameters", {"total": -5}),
               ("trust", {"reasons": "not a list"}), ("item_ids", [1, 2])]


@pytest.mark.parametrize("field, value", BAD_NUMBERS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_NUMBERS)])
def test_report_refuses_a_bad_number_in_one_line_naming_record_and_field(field, value, tmp_path, capsys):
    (tmp_path / "ok.json").write_text(json.dumps(_valid_record()))
    (tmp_path / "hostile.json").write_text(json.dumps(_valid_record(**{field: value, "model": "other"})))
    rc = main(["report", str(tmp_path), "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "hostile.json" in err[0] and field in err[0] and "internal error" not in err[0], err
    assert not (tmp_path / "rep").exists()


HOSTILE_TEXT = ["a|b|c", "line1\nline2\r\n| injected | row |", "<script>alert(1)</script>", "[x](http://evil)",
                "=HYPERLINK(\"http://evil\")", "+cmd", "@SUM(A1)", "-2+3", "`code` **bold** _it_", "$\\frac{a}{b}$",
                "\x1b[31mred\x00", "tab\there", "\u2028sep"]


def test_report_escapes_every_text_field_of_hostile_records(tmp_path, capsys):
    text_fields = ["model", "runtime", "precision", "workload", "shape", "run_id", "git_revision"]
    for i, text in enumerate(HOSTILE_TEXT):
        rec = _valid_record(**{f: f"{text}" for f in text_fields},
                            machine={"hostname": text, "cpu_model": text, "os": text, "isa_flags": [text]},
                            versions={"torch": text}, trust={"reasons": [text]})
        (tmp_path / f"r{i}.json").write_text(json.dumps(rec))
        failed = _valid_record(model=f"{text}-f", status="failed", reason=text)
        (tmp_path / f"f{i}.json").write_text(json.dumps(failed))
    rc = main(["report", str(tmp_path), "--out", str(tmp_path / "rep")])
    assert rc == 0, capsys.readouterr().err
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "<script>" not in md and "[x](http" not in md and "\x1b" not in md and "\x00" not in md
    assert "| injected | row |" not in md and "\u2028" not in md
    for line in md.splitlines():
        if line.startswith("|"):  # every table row keeps its column count: no cell broke out
            cells = line.count("|") - line.count("\\|")
            header = next(h for h in md.splitlines()[:md.splitlines().index(line) + 1][::-1]
                          if h.startswith("|") and "---" not in h and h.count("\\|") == 0)
            assert cells == header.count("|"), line
    rows = list(csv.reader(io.StringIO((tmp_path / "rep" / "results.csv").read_text())))
    assert len({len(r) for r in rows}) == 1 and len(rows) == 1 + len(HOSTILE_TEXT)
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")) or _is_number(cell), cell
            assert "\n" not in cell and "\r" not in cell


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


# ------------------------------------------------------------------ plugins

@pytest.mark.parametrize("plugin", ["raise RuntimeError('boom at import')\n", "def broken(:\n", None],
                         ids=["raises", "syntax-error", "missing"])
def test_a_broken_plugin_is_one_line_and_help_still_works(plugin, tmp_path):
    path = tmp_path / "myplugin.py"
    if plugin is not None:
        path.write_text(plugin)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POCKETBERT_PLUGINS": str(path)}
    for argv in (["--help"], ["bench", "--help"]):
        r = subprocess.run([sys.executable, "-m", "pocketbert.cli", *argv], env=env, capture_output=True,
                           text=True, timeout=120)
        err = r.stderr.strip().splitlines()
        assert r.returncode == 0 and "usage:" in r.stdout, r.stderr
        assert len(err) == 1 and str(path) in err[0] and "not loaded" in err[0], err
        assert {"raises": "boom at import", "syntax-error": "SyntaxError", "missing": "not found"}[
            {None: "missing"}.get(plugin, "raises" if "raise" in (plugin or "") else "syntax-error")] in err[0]


def test_threads_above_the_machines_cores_are_refused(tmp_path, capsys):
    rc = main(["bench", "--model", "bert-tiny", "--runtime", "pytorch", "--threads", "999", "--quiet",
               "--out", str(tmp_path / "res")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--threads 999" in err[0] and "cores" in err[0], err
    assert not (tmp_path / "res").exists()

"""Issue 10: plain model files (a .onnx / .pte a user already has, optimum-cli's folder) are timed by
`pocketbert bench --bundle` next to our bundles, on the same items, through their own input names.

The peers here are our own tiny bundle's files copied out as plain files (no manifest), one with its
inputs and outputs renamed, one with a fixed input shape, and the .pte: same weights as the bundle,
so a correct input mapping gives the bundle's answers exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pocketbert.cli import main
from pocketbert.common import sha256_file

SEQ = 32


def _rewrite(src: Path, dst: Path, inputs: dict[str, str] | None = None, outputs: dict[str, str] | None = None,
             fixed: int | None = None) -> Path:
    """A copy of an ONNX file with graph inputs/outputs renamed and (optionally) a fixed sequence length."""
    import onnx

    model = onnx.load(str(src))
    renames = {**(inputs or {}), **(outputs or {})}
    for v in list(model.graph.input) + list(model.graph.output):
        if v.name in renames:
            v.name = renames[v.name]
        if fixed and v in model.graph.input:
            dims = v.type.tensor_type.shape.dim
            dims[0].dim_value, dims[1].dim_value = 1, fixed
    for node in model.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    onnx.save(model, str(dst))
    return dst


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A bert-tiny QA bundle per runtime (onnx, executorch) and plain files made from them."""
    from export.pipeline import ExportConfig, run_export

    root = tmp_path_factory.mktemp("peers")
    made = run_export(ExportConfig(model="bert-tiny", out=root / "ours", targets=["onnx", "executorch"],
                                   precisions=["fp32"], seq_len=SEQ, parity_samples=2, calibration_samples=2),
                      log=lambda m: None)
    onnx_bundle = next(b for b in made if b.name.startswith("onnx"))
    et_bundle = next(b for b in made if b.name.startswith("executorch"))
    peers = root / "peers"
    peers.mkdir()
    renamed = _rewrite(onnx_bundle / "model.onnx", peers / "renamed.onnx",
                       {"input_ids": "ids", "attention_mask": "mask", "token_type_ids": "segment_ids"},
                       {"start_logits": "out0", "end_logits": "out1"})
    static = _rewrite(onnx_bundle / "model.onnx", peers / "static.onnx", fixed=SEQ)
    pte = shutil.copy(et_bundle / "model.pte", peers / "peer.pte")
    return {"root": root, "onnx": onnx_bundle, "et": et_bundle, "renamed": renamed, "static": static,
            "pte": Path(pte)}


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.rglob("*.json"))]


def test_plain_files_are_timed_next_to_the_bundle(tiny, tmp_path, capsys):
    out = tmp_path / "res"
    rc = main(["bench", "--bundle", str(tiny["onnx"]), str(tiny["renamed"]), str(tiny["static"]), str(tiny["pte"]),
               "--seq-len", str(SEQ), "--threads", "1", "--warmup", "0", "--limit", "3",
               "--out", str(out), "--run-id", "r", "--quiet"])
    console = capsys.readouterr().out
    assert rc == 0, console
    recs = {(r["model"], r["shape"]): r for r in _records(out / "r")}
    ours = recs[("bert-tiny", "dynamic")]
    assert ours["status"] == "ok"
    for label, path, runtime in (("renamed.onnx", tiny["renamed"], "onnx"), ("peer.pte", tiny["pte"], "executorch")):
        for shape in ("fixed", "dynamic"):
            rec = recs[(label, shape)]
            assert rec["status"] == "ok", rec["reason"]
            assert (rec["runtime"], rec["precision"], rec["task"]) == (runtime, "fp32", "question-answering")
            assert rec["bundle"] == str(path)  # the record says which file
            assert rec["notes"]["peer"]["sha256"] == sha256_file(path)
            assert rec["item_ids"] == ours["item_ids"]
            assert rec["model_file_bytes"] == path.stat().st_size
        # same weights and items: the right input mapping gives exactly the bundle's answers
        assert recs[(label, "dynamic")]["answers_sample"] == ours["answers_sample"]
    peer = recs[("renamed.onnx", "dynamic")]["notes"]["peer"]
    assert {i["name"]: i["feature"] for i in peer["inputs"]} == {
        "ids": "input_ids", "mask": "attention_mask", "segment_ids": "token_type_ids"}
    assert peer["task_from"] == "outputs"
    assert recs[("static.onnx", "fixed")]["status"] == "ok"
    skipped = recs[("static.onnx", "dynamic")]
    assert skipped["status"] == "skipped" and "fixed input shape" in skipped["reason"]
    report = (out / "r" / "report.md").read_text()
    assert "renamed.onnx" in report and "peer.pte" in report and "bert-tiny" in report


@pytest.mark.parametrize("make, message", [
    (lambda d, t: (d / "model.bin").write_bytes(b"\0" * 16) and d / "model.bin", "expected a pocketbert bundle"),
    (lambda d, t: (d / "empty").mkdir() or d / "empty", "expected a pocketbert bundle"),
    (lambda d, t: (d / "junk.onnx").write_bytes(b"not a model") and d / "junk.onnx", "cannot read it as a onnx"),
    (lambda d, t: _rewrite(t["onnx"] / "model.onnx", d / "odd.onnx", {"attention_mask": "foo"}),
     "cannot map input(s) foo: expected inputs named like input_ids, attention_mask, token_type_ids"),
    (lambda d, t: _rewrite(t["onnx"] / "model.onnx", d / "three.onnx", outputs={"end_logits": "x"}).parent
     and _three_outputs(d / "three.onnx"), "cannot tell its task from its outputs"),
])
def test_bad_plain_file_is_one_line(tiny, tmp_path, capsys, make, message):
    path = make(tmp_path, tiny)
    out = tmp_path / "res"
    assert main(["bench", "--bundle", str(path), "--seq-len", str(SEQ), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()  # failed before any work


def _three_outputs(path: Path) -> Path:
    """The file with a third graph output (an intermediate), so the task cannot be read from them."""
    import onnx

    model = onnx.load(str(path))
    extra = onnx.ValueInfoProto()
    extra.name = model.graph.node[0].output[0]
    model.graph.output.append(extra)
    onnx.save(model, str(path))
    return path

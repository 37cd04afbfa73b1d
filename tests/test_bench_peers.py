"""Issue 10: plain model files (a .onnx / .pte a user already has, optimum-cli's folder) are timed by
`pocketbert bench --bundle` next to our bundles, on the same items, through their own input names.

The ONNX peers are our own tiny bundle's model.onnx copied out as plain files (no manifest), one with
its inputs and outputs renamed (same weights as the bundle, so a correct input mapping gives the
bundle's answers exactly), one with a fixed input shape. The .pte peers are a toy QA module lowered to
XNNPACK, with a dynamic and a fixed sequence length (an ExecuTorch export of bert-tiny costs ~40 s).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pocketbert.cli import main
from pocketbert.common import sha256_file

pytestmark = pytest.mark.heavy  # our exports next to plain files, through the bench

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


def _toy_pte(path: Path, dynamic: bool) -> Path:
    """A QA-shaped ExecuTorch program (ids, mask, token types -> start, end logits), XNNPACK-lowered."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from torch.export import Dim, export

    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.types, self.head = torch.nn.Embedding(2048, 16), torch.nn.Embedding(2, 16), torch.nn.Linear(16, 2)

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = (self.emb(input_ids) + self.types(token_type_ids)) * attention_mask.unsqueeze(-1).float()
            logits = self.head(h)
            return logits[..., 0], logits[..., 1]

    torch.manual_seed(0)
    args = tuple(torch.ones((1, SEQ), dtype=torch.long) for _ in range(3))
    seq = Dim("seq", min=2, max=SEQ)
    shapes = {n: {1: seq} for n in ("input_ids", "attention_mask", "token_type_ids")} if dynamic else None
    program = export(Toy().eval(), args, dynamic_shapes=shapes, strict=False)
    path.write_bytes(to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A bert-tiny ONNX QA bundle and plain files: renamed / fixed-shape copies, toy .pte files."""
    from export.pipeline import ExportConfig, run_export

    root = tmp_path_factory.mktemp("peers")
    [bundle] = run_export(ExportConfig(model="bert-tiny", out=root / "ours", targets=["onnx"], precisions=["fp32"],
                                       seq_len=SEQ, parity_samples=2, calibration_samples=2), log=lambda m: None)
    peers = root / "peers"
    peers.mkdir()
    renamed = _rewrite(bundle / "model.onnx", peers / "renamed.onnx",
                       {"input_ids": "ids", "attention_mask": "mask", "token_type_ids": "segment_ids"},
                       {"start_logits": "out0", "end_logits": "out1"})
    static = _rewrite(bundle / "model.onnx", peers / "static.onnx", fixed=SEQ)
    return {"root": root, "onnx": bundle, "renamed": renamed, "static": static,
            "pte": _toy_pte(peers / "peer.pte", dynamic=True), "static_pte": _toy_pte(peers / "static.pte", dynamic=False)}


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.rglob("*.json"))]


def test_plain_files_are_timed_next_to_the_bundle(tiny, tmp_path, capsys):
    out = tmp_path / "res"
    rc = main(["bench", "--bundle", str(tiny["onnx"]), str(tiny["renamed"]), str(tiny["static"]), str(tiny["pte"]),
               str(tiny["static_pte"]),
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
    assert recs[("renamed.onnx", "dynamic")]["answers_sample"] == ours["answers_sample"]
    peer = recs[("renamed.onnx", "dynamic")]["notes"]["peer"]
    assert {i["name"]: i["feature"] for i in peer["inputs"]} == {
        "ids": "input_ids", "mask": "attention_mask", "segment_ids": "token_type_ids"}
    assert peer["task_from"] == "outputs"
    for label in ("static.onnx", "static.pte"):  # a fixed input shape: runs padded, says why not real length
        assert recs[(label, "fixed")]["status"] == "ok"
        skipped = recs[(label, "dynamic")]
        assert skipped["status"] == "skipped" and "fixed input shape [1, 32]" in skipped["reason"], skipped["reason"]
    report = (out / "r" / "report.md").read_text()
    assert "renamed.onnx" in report and "peer.pte" in report and "bert-tiny" in report


@pytest.mark.parametrize("make, message", [
    (lambda d, t: (d / "model.bin").write_bytes(b"\0" * 16) and d / "model.bin", "expected a pocketbert bundle"),
    (lambda d, t: (d / "empty").mkdir() or d / "empty", "expected a pocketbert bundle"),
    (lambda d, t: (d / "junk.onnx").write_bytes(b"not a model") and d / "junk.onnx", "cannot read it as an ONNX model"),
    (lambda d, t: _rewrite(t["onnx"] / "model.onnx", d / "odd.onnx", {"attention_mask": "foo"}),
     "cannot map input(s) foo: expected inputs named like input_ids, attention_mask, token_type_ids"),
    (lambda d, t: _rewrite(t["onnx"] / "model.onnx", d / "three.onnx", outputs={"end_logits": "x"}).parent
     and _three_outputs(d / "three.onnx"), "cannot tell its task from its outputs"),
])
def test_bad_plain_file_is_one_line(tiny, tmp_path, capsys, make, message):
    path = make(tmp_path, tiny)
    out = tmp_path / "res"
    rc = main(["bench", "--bundle", str(path), "--seq-len", str(SEQ), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    if "cannot read it" in message:  # a corrupt model file: one failed record; all failed: exit 1 (issue 20)
        assert rc == 1 and [json.loads(p.read_text())["status"] for p in out.rglob("*.json")] == ["failed"]
    else:
        assert rc == 2 and not out.exists()  # failed before any work


def _three_outputs(path: Path) -> Path:
    """The file with a third graph output (an intermediate), so the task cannot be read from them."""
    import onnx

    model = onnx.load(str(path))
    extra = onnx.ValueInfoProto()
    extra.name = model.graph.node[0].output[0]
    model.graph.output.append(extra)
    onnx.save(model, str(path))
    return path


def test_optimum_style_folder_and_task_hint(tiny, tmp_path):
    """A folder holding model.onnx + config.json + tokenizer files (optimum-cli's layout, no
    manifest): its tokenizer and config are used (parameters as our manifest counts them), its
    label names the folder; a --task hint names the task of a file whose outputs do not."""
    from bench.config import BenchConfig
    from bench.planning import given_bundles
    from export.bundle import read_manifest

    folder = tmp_path / "optimum-fp32"
    shutil.copytree(tiny["onnx"], folder)
    (folder / "manifest.json").unlink()
    [(where, m)] = given_bundles([folder], BenchConfig(seq_len=SEQ))
    assert where == folder and m.source == "optimum-fp32-model.onnx" and m.target == "onnx"
    assert m.peer.tokenizer == str(folder) and m.dynamic_seq and m.precision == "fp32"
    assert m.parameters == read_manifest(tiny["onnx"]).parameters
    odd = _three_outputs(_rewrite(tiny["onnx"] / "model.onnx", tmp_path / "odd.onnx"))
    [(_, m)] = given_bundles([odd], BenchConfig(seq_len=SEQ, task="question-answering"))
    assert (m.task, m.peer.task_from) == ("question-answering", "--task")

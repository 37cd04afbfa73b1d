"""ONNX `--int8-mode blockwise`: onnxruntime's MatMulNBits (8-bit weights in blocks along K, int8
compute on activations quantized per row and block at run time) instead of quantize_dynamic's one
activation scale per MatMul input. Tiny seeded models: a bert-tiny whose layer-0 FFN input carries
one outlier feature (tests/test_int8_guided.py's fragile model), where the per-tensor scale breaks
plain dynamic int8 and the per-block one holds."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import onnx
import pytest

from export.bundle import read_manifest
from export.pipeline import ExportConfig, run_export
from export.targets.onnx import BLOCKWISE, float_weights
from pocketbert.cli import main
from pocketbert.errors import CheckFailed
from test_export import _error  # the export CLI's one-line-error check, shared
from test_int8_guided import _squad, save_fragile_model

SEQ = 64
LINEARS = 2 * 6 + 1  # bert-tiny: 2 layers x (Q, K, V, attention out, FFN in, FFN out) + the QA head


def _graph(bundle: Path):
    return onnx.load(str(bundle / read_manifest(bundle)["model_file"])).graph


def _export(folder: Path, out: Path, mode: str) -> Path:
    (bundle,) = run_export(ExportConfig(model=str(folder), out=out, task="question-answering",
                                        targets=["onnx"], precisions=["int8"], seq_len=SEQ,
                                        parity_samples=4, int8_mode=mode), log=lambda m: None)
    return bundle


@pytest.fixture(scope="module")
def outlier_exports(tmp_path_factory) -> tuple[Path, str]:
    """The outlier bert-tiny QA exported int8 blockwise (its bundle) and int8 dynamic (which fails
    its parity check: the one-line error)."""
    folder = save_fragile_model("question-answering", tmp_path_factory.mktemp("outlier"))
    out = tmp_path_factory.mktemp("blockwise")
    with pytest.raises(CheckFailed) as failed:
        _export(folder, out / "dynamic", "dynamic")
    return _export(folder, out / "blockwise", "blockwise"), str(failed.value)


def test_blockwise_graph_is_int8_matmulnbits_with_the_recorded_settings(outlier_exports):
    bundle, _ = outlier_exports
    graph = _graph(bundle)
    ops = collections.Counter(n.op_type for n in graph.node)
    nbits = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert len(nbits) == LINEARS, ops
    for node in nbits:  # 8-bit weights in blocks of 32, int8 compute (accuracy_level 4)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert node.domain == "com.microsoft"
        assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (8, 32, 4), attrs
        assert len(node.input) == 3  # A, B, scales: symmetric, no zero points
    # no per-tensor dynamic activation quantization, no float MatMul weight left
    assert ops["DynamicQuantizeLinear"] == 0 and ops["MatMulInteger"] == 0, ops
    assert float_weights(bundle / "model.onnx", min_elements=4096) == {}  # the embeddings too
    m = read_manifest(bundle)
    assert m["notes"]["int8_mode"] == "blockwise" and m["notes"]["int8_blockwise"] == BLOCKWISE
    assert "MatMulNBits" in m["notes"]["quantization"] and "int8_choice" not in m["notes"]
    assert m["files"]["model.onnx"]["bytes"] < 0.5 * 4 * m["parameters"]["total"]  # fp32: 4 B/param


def test_blockwise_holds_an_outlier_feature_that_breaks_per_tensor_int8(outlier_exports):
    """The outlier sets dynamic int8's one activation scale and the layer's other features round
    to zero (far below the 15 dB parity bound); per-block scales confine it to its own block."""
    bundle, dynamic_failure = outlier_exports
    dynamic_snr = float(re.search(r"SNR (-?[\d.]+) dB < 15", dynamic_failure).group(1))
    assert "onnx-int8 parity: failed" in dynamic_failure and dynamic_snr < 10, dynamic_failure
    blockwise = read_manifest(bundle)["parity"]
    assert blockwise["status"] == "passed", blockwise
    assert blockwise["min_snr_db"] > dynamic_snr + 15, (blockwise, dynamic_failure)


def test_blockwise_usage_errors(tmp_path, capsys):
    base = ["--model", "bert-tiny", "--seq-len", "16", "--out", str(tmp_path / "o")]
    err = _error(capsys, *base, "--target", "executorch", "--precision", "int8", "--int8-mode", "blockwise")
    assert "--int8-mode blockwise is built by ONNX only" in err
    assert "executorch int8 builds dynamic, static" in err
    err = _error(capsys, *base, "--target", "onnx", "executorch", "--precision", "int8",
                 "--int8-mode", "blockwise")
    assert "executorch int8 builds dynamic, static" in err
    data = _squad(tmp_path / "choose.json", 2, seed=1)
    err = _error(capsys, *base, "--target", "onnx", "--precision", "int8", "--int8-guided",
                 f"squad:{data}", "--int8-mode", "blockwise")
    assert "--int8-guided" in err and "blockwise" in err
    assert not (tmp_path / "o").exists()


def test_help_describes_blockwise(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "blockwise" in text and "MatMulNBits" in text

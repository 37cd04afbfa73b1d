"""Fused ONNX graphs, int8 that quantizes every large weight, and ExecuTorch 8da4w, on bert-tiny."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from export.bundle import read_manifest
from export.parity import check_parity
from export.pipeline import ExportConfig, run_export
from pocketbert.backends import open_runner
from export.targets.onnx import float_weights
from pocketbert.models import load_model
from pocketbert.textgen import synthetic_examples
from tests.shared_bundles import BERT_TINY_SEQ

pytestmark = pytest.mark.heavy  # fused and plain ONNX, ExecuTorch 8da4w exports

SEQ = BERT_TINY_SEQ
FUSED_OPS = {"SkipLayerNormalization", "BiasGelu"}


@pytest.fixture(scope="module")
def bundles(bert_tiny_qa_bundles, tmp_path_factory) -> dict[str, Path]:
    """The session's bert-tiny exports (fused ONNX by default, conftest.py) plus unfused ONNX."""
    plain = run_export(ExportConfig(model="bert-tiny", out=tmp_path_factory.mktemp("fusion") / "plain",
                                    targets=["onnx"], precisions=["fp32", "int8"], seq_len=SEQ,
                                    onnx_fuse=False, calibration_samples=8, parity_samples=6,
                                    int8_mode="dynamic"),  # as the shared fused bundles
                       log=lambda m: None)
    return {**bert_tiny_qa_bundles, **{f"plain-{b.name}": b for b in plain}}


def _model(bundle: Path) -> Path:
    return bundle / read_manifest(bundle).model_file


def _op_types(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_onnx_export_is_fused_by_default(bundles):
    assert FUSED_OPS | {"MultiHeadAttention"} <= _op_types(_model(bundles["onnx-fp32"]))
    # int8: attention packed into QAttention, SkipLayerNorm / BiasGelu split into faster plain ops
    int8 = _op_types(_model(bundles["onnx-int8"]))
    assert {"QAttention", "Sum", "LayerNormalization", "Gelu"} <= int8 and not FUSED_OPS & int8, int8
    assert "MultiHeadAttention" not in int8
    fusions = read_manifest(bundles["onnx-int8"]).notes["fusions"]
    assert fusions["packed_attention"] == 2 and fusions["split_skip_layer_normalization"] == 4
    assert read_manifest(bundles["onnx-fp32"]).notes["fusions"]["skip_layer_normalization"] >= 2
    assert not FUSED_OPS & _op_types(_model(bundles["plain-onnx-fp32"]))


def test_fused_and_unfused_files_agree_within_fp32_tolerance(bundles):
    loaded = load_model("bert-tiny", "question-answering")
    names = loaded.input_names
    plain = open_runner("onnx", _model(bundles["plain-onnx-fp32"]), names)
    fused = open_runner("onnx", _model(bundles["onnx-fp32"]), names)
    examples = synthetic_examples(loaded.tokenizer, "question-answering", 6, SEQ, seed=7)
    result = check_parity("question-answering", "fp32", plain, fused, examples)
    assert result["status"] == "passed", result["status"]
    assert result["max_abs_diff"] < 1e-5


@pytest.mark.parametrize("name", ["onnx-int8", "plain-onnx-int8"])
def test_int8_quantizes_every_large_weight(bundles, name):
    # bert-tiny's smallest weight matrix is 128x128; biases and LayerNorm scales are <= 512
    assert float_weights(_model(bundles[name]), min_elements=4096) == {}
    fp32 = _model(bundles["onnx-fp32"]).stat().st_size
    assert _model(bundles[name]).stat().st_size < 0.4 * fp32  # int8 weights + scales, graph, small fp32 rest


def test_8da4w_is_a_close_4bit_export(bundles):
    manifest = read_manifest(bundles["executorch-8da4w"])
    assert manifest.parity["status"] == "passed"
    assert 12 < manifest.parity["min_snr_db"] < 35  # really 4-bit, still the same model
    fp32 = _model(bundles["onnx-fp32"]).stat().st_size  # same weights in fp32
    assert _model(bundles["executorch-8da4w"]).stat().st_size < 0.25 * fp32


def test_8da4w_runs_real_lengths(bundles):
    loaded = load_model("bert-tiny", "question-answering")
    run = open_runner("executorch", _model(bundles["executorch-8da4w"]), loaded.input_names)
    for n in (5, SEQ):
        feeds = {k: np.ones((1, n), np.int64) for k in loaded.input_names}
        start, end = run(feeds)
        assert start.shape == end.shape == (1, n) and np.isfinite(start).all()


def test_packed_attention_replaces_each_mha_and_its_projections_and_keeps_the_outputs(bundles, tmp_path):
    """export/onnx_attention.py: every MultiHeadAttention with its three Q/K/V MatMul(+Add) becomes one
    com.microsoft Attention with a [D, 3D] weight and the 2-D padding mask; outputs unchanged, padded rows
    included (the mask reaches the new node), and quantize_dynamic then makes it QAttention."""
    import onnxruntime as ort

    from export.onnx_attention import pack_attention
    from export.targets.onnx import _quantize, fuse

    fused, _ = fuse(_model(bundles["plain-onnx-fp32"]), tmp_path / "fused.onnx")  # MultiHeadAttention
    packed, n = pack_attention(fused, tmp_path / "packed.onnx")
    before, after = _op_types_counted(fused), _op_types_counted(packed)
    assert n == before["MultiHeadAttention"] == after["Attention"] == 2 and after["MultiHeadAttention"] == 0
    assert after["MatMul"] == before["MatMul"] - 3 * n and after["Expand"] == 0
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fused, packed)]
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.integers(1, 500, (2, SEQ)) for i in sessions[0].get_inputs()}
    feeds["attention_mask"] = np.ones((2, SEQ), np.int64)
    feeds["attention_mask"][1, SEQ // 2:] = 0
    if "token_type_ids" in feeds:
        feeds["token_type_ids"] = np.zeros((2, SEQ), np.int64)
    want, got = (s.run(None, feeds) for s in sessions)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    feeds["attention_mask"][1] = 1  # the mask moves the padded row's outputs: it is read
    assert not np.allclose(sessions[1].run(None, feeds)[0][1], got[0][1])
    assert _op_types_counted(_quantize(packed, tmp_path / "int8.onnx"))["QAttention"] == n


def test_split_skip_layer_norm_and_bias_gelu_keep_the_outputs(bundles, tmp_path):
    """export/onnx_unfuse.py: SkipLayerNormalization -> Sum + LayerNormalization, BiasGelu -> Add + Gelu
    (ORT would fuse an Add + LayerNormalization back at load: Sum is not matched); same outputs."""
    import onnxruntime as ort

    from export.onnx_unfuse import split_slow_fusions
    from export.targets.onnx import fuse

    fused, _ = fuse(_model(bundles["plain-onnx-fp32"]), tmp_path / "fused.onnx")
    split, counts = split_slow_fusions(fused, tmp_path / "split.onnx")
    before, after = _op_types_counted(fused), _op_types_counted(split)
    assert counts == {"skip_layer_normalization": before["SkipLayerNormalization"], "bias_gelu": before["BiasGelu"]}
    assert after["SkipLayerNormalization"] == after["BiasGelu"] == 0 and after["Sum"] == before["SkipLayerNormalization"]
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "loaded.onnx")  # what ORT runs after its own fusions
    sessions = [ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for p in (fused, split)]
    assert _op_types_counted(tmp_path / "loaded.onnx")["SkipLayerNormalization"] == 0
    rng = np.random.default_rng(1)
    feeds = {i.name: rng.integers(1, 500, (2, SEQ)) for i in sessions[0].get_inputs()}
    feeds["attention_mask"] = np.ones((2, SEQ), np.int64)
    if "token_type_ids" in feeds:
        feeds["token_type_ids"] = np.zeros((2, SEQ), np.int64)
    for w, g in zip(*(s.run(None, feeds) for s in sessions)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def _op_types_counted(path: Path):
    import collections

    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)

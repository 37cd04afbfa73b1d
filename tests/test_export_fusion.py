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
FUSED_OPS = {"MultiHeadAttention", "SkipLayerNormalization", "BiasGelu"}


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
    for name in ("onnx-fp32", "onnx-int8"):
        assert FUSED_OPS <= _op_types(_model(bundles[name])), name
        assert read_manifest(bundles[name]).notes["fusions"]["skip_layer_normalization"] >= 2
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

"""Exports made once per test session and shared by the test files that read them."""

import pytest

BERT_TINY_SEQ = 32  # the shared bert-tiny QA bundles' window


@pytest.fixture(scope="session")
def bert_tiny_qa_bundles(tmp_path_factory) -> dict:
    """bert-tiny QA exported to every target at every precision it supports (fp32, fp16, int8,
    palette4, 8da4w), in one call: name ("onnx-int8") -> bundle folder. Shared by the test files
    that read these exports (export, fusion), so each is made once per session."""
    from export.pipeline import ExportConfig, run_export

    out = tmp_path_factory.mktemp("export") / "qa"
    cfg = ExportConfig(model="bert-tiny", out=out, targets=["executorch", "onnx", "coreml"],
                       precisions=["fp32", "fp16", "int8", "palette4", "8da4w"], seq_len=BERT_TINY_SEQ,
                       calibration_samples=8, parity_samples=6,
                       int8_mode="dynamic")  # the tests' int8 figures are dynamic's (auto: tests/test_int8_mode.py)
    return {b.name: b for b in run_export(cfg, log=lambda m: None)}

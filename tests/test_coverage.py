"""Delegation coverage in every manifest: how much of an exported graph runs in its runtime's fast
path (export/coverage.py, each target's `delegation`), counted on real lowered graphs."""

import re
from pathlib import Path

import numpy as np
import pytest

from export.bundle import read_manifest
from export.coverage import MIN_DELEGATED_PCT, coverage_warning, delegated_label
from pocketbert.contracts import Delegation


def _tiny_program():
    """linear -> LayerNorm -> linear: XNNPACK takes the linears, not the LayerNorm."""
    import torch
    from torch.export import export

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 8)).eval()
    with torch.no_grad():
        return export(model, (torch.randn(4, 16),), strict=False)


def test_executorch_coverage_counts_delegated_and_portable_operators():
    from executorch.exir import to_edge_transform_and_lower

    from export.targets.executorch import delegation, lower_to_xnnpack

    program = _tiny_program()
    on = delegation(lower_to_xnnpack(program))
    assert on.delegated_by_kind.get("linear") == 2 and on.other_by_kind.get("native_layer_norm") == 1
    assert on.partitions == 2  # the LayerNorm between the linears splits the delegate
    assert on.delegated_ops == sum(on.delegated_by_kind.values()) and on.other_ops == 1
    assert on.delegated_pct == pytest.approx(100 * on.delegated_ops / (on.delegated_ops + 1), abs=0.01)
    assert on.delegated_pct >= MIN_DELEGATED_PCT and coverage_warning(on) == ""

    off = delegation(to_edge_transform_and_lower(program))  # the partitioner off: nothing delegated
    assert off.partitions == 0 and off.delegated_ops == 0 and off.delegated_pct == 0
    assert off.other_ops >= 3 and "native_layer_norm" in off.other_by_kind
    warning = coverage_warning(off)
    assert "0%" in warning and "XNNPACK delegate" in warning and "\n" not in warning
    # the manifest's form reads back, range-checked

    assert Delegation.from_dict(on.to_dict(), "m") == on


def _onnx_file(path: Path, skip_norm: bool) -> Path:
    """x @ W, then (skip_norm) + x and LayerNormalization, which ONNX Runtime fuses into its
    SkipLayerNormalization contrib kernel at load; else a ReLU (nothing to fuse)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "W"),
             numpy_helper.from_array(np.ones(8, np.float32), "gamma"),
             numpy_helper.from_array(np.zeros(8, np.float32), "beta")]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"])]
    if skip_norm:
        nodes += [helper.make_node("Add", ["h", "x"], ["s"]),
                  helper.make_node("LayerNormalization", ["s", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-5)]
    else:
        nodes += [helper.make_node("Relu", ["h"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def test_onnx_coverage_counts_fused_nodes_and_mobile_providers(tmp_path):
    from export.targets.onnx import delegation

    fused = delegation(_onnx_file(tmp_path / "fused.onnx", True), tmp_path / "fused-opt.onnx")
    assert fused.delegated_by_kind == {"SkipLayerNormalization": 1} and fused.other_by_kind == {"MatMul": 1}
    assert fused.delegated_pct == 50 and fused.partitions is None
    plain = delegation(_onnx_file(tmp_path / "plain.onnx", False), tmp_path / "plain-opt.onnx")
    assert plain.delegated_ops == 0 and plain.other_by_kind == {"MatMul": 1, "Relu": 1}
    for d in (fused, plain):
        assert set(d.providers) == {"NNAPI", "CoreML", "XNNPACK"}
        assert d.providers["XNNPACK"].nodes_pct is None and "not analysed" in d.providers["XNNPACK"].why
    assert plain.providers["NNAPI"].nodes_pct == 100 and plain.providers["NNAPI"].partitions == 1
    # the file as written (Add + LayerNormalization, before ORT's fusion): NNAPI takes MatMul and Add only
    assert fused.providers["NNAPI"].nodes_pct == pytest.approx(200 / 3, abs=0.01)
    assert "ai.onnx:LayerNormalization" in fused.providers["NNAPI"].unsupported_ops
    # no delegate, no partition cliff: ONNX files report their share without a warning
    assert coverage_warning(plain) == "" and delegated_label({"delegated_pct": 50.0}) == "50% fused"


# heavy (tests/conftest.py): whole exports through the pipeline

@pytest.fixture(scope="module")
def tiny_bundles(tmp_path_factory) -> dict:
    """bert-tiny QA exported to ONNX and ExecuTorch, fp32 and int8 (dynamic): name -> bundle folder."""
    from export.pipeline import ExportConfig, run_export

    cfg = ExportConfig(model="bert-tiny", out=tmp_path_factory.mktemp("cov") / "qa", targets=["executorch", "onnx"],
                       precisions=["fp32", "int8"], seq_len=32, calibration_samples=2, parity_samples=2,
                       int8_mode="dynamic")
    return {b.name: b for b in run_export(cfg, log=lambda m: None)}


@pytest.mark.heavy
def test_every_target_writes_consistent_coverage(tiny_bundles):
    assert set(tiny_bundles) == {"executorch-fp32", "executorch-int8", "onnx-fp32", "onnx-int8"}
    for name, bundle in tiny_bundles.items():
        m = read_manifest(bundle)
        d = m.delegation
        assert m.format == "pocketbert-bundle/2" and isinstance(d, Delegation), name
        assert d.delegated_ops + d.other_ops > 20, name
        if m.target == "executorch":
            # every linear and LayerNorm in the delegate; only the embedding gathers and the output split outside
            assert d.partitions >= 1 and not {"linear", "native_layer_norm"} & set(d.other_by_kind), (name, d)
            assert d.other_by_kind.get("embedding"), d.other_by_kind
            assert d.delegated_pct >= MIN_DELEGATED_PCT, (name, d.delegated_pct)
        else:
            # int8: attention packed into QAttention, SkipLayerNorm split (export/targets/onnx.py)
            fused = {"QAttention", "Gelu"} if name == "onnx-int8" else {"MultiHeadAttention", "SkipLayerNormalization"}
            assert fused <= set(d.delegated_by_kind), (name, d)
            assert d.providers["NNAPI"].nodes_pct is not None and d.partitions is None
    ints = {n: read_manifest(b).delegation for n, b in tiny_bundles.items() if n.startswith("onnx-")}
    # ORT fuses the int8 graph's MatMulInteger + scales into its quantized-GEMM contrib kernels
    assert "MatMulIntegerToFloat" in ints["onnx-int8"].delegated_by_kind or \
        "DynamicQuantizeMatMul" in ints["onnx-int8"].delegated_by_kind
    assert ints["onnx-int8"].delegated_pct > ints["onnx-fp32"].delegated_pct


@pytest.mark.heavy
def test_an_undelegated_executorch_export_shows_low_coverage_and_warns(tmp_path, monkeypatch):
    """The same export with XNNPACK's partitioner off (every operator on portable kernels): the
    manifest says 0% in 0 partitions and the export prints the one-line warning (parity still holds)."""
    from executorch.exir import to_edge_transform_and_lower

    import export.targets.executorch as et
    from export.pipeline import ExportConfig, run_export

    monkeypatch.setattr(et, "lower_to_xnnpack", lambda program: to_edge_transform_and_lower(program))
    lines: list[str] = []
    cfg = ExportConfig(model="bert-tiny", out=tmp_path / "b", targets=["executorch"], precisions=["fp32"],
                       seq_len=32, calibration_samples=2, parity_samples=2)
    [bundle] = run_export(cfg, log=lines.append)
    d = read_manifest(bundle).delegation
    assert d.delegated_pct == 0 and d.partitions == 0 and d.other_ops > 50
    # the linears themselves fell out (lowered without the partitioner they decompose into (add)mm)
    assert sum(d.other_by_kind.get(k, 0) for k in ("linear", "addmm", "mm")) >= 12, d.other_by_kind
    warnings = [line for line in lines if "warning:" in line]
    assert len(warnings) == 1 and "0% of the operators" in warnings[0], lines
    assert "| 0% (0 partitions) |" in re.sub(" +", " ", "\n".join(lines))  # the export's summary table

"""int8 mode: static (calibrated) int8 next to dynamic for ONNX and ExecuTorch, and `auto`, which
builds both, checks and times them and keeps static only when it passes and is clearly faster.
Tiny seeded models; which candidate is faster on this machine is never asserted (timing belongs to
the bench), only that the recorded choice follows the rule from the recorded figures."""

from __future__ import annotations

import collections
import json
import statistics
import tempfile
from pathlib import Path

import onnx
import pytest

from export.bundle import read_manifest
from export.int8_choice import CALLS_PER_ROUND, TIMING_ROUNDS, Candidate, auto_modes, choose
from export.pipeline import ExportConfig, run_export
from export.targets import get_target
from export.targets.onnx import float_weights
from test_export import _error  # the export CLI's one-line-error check, shared
from test_int8_guided import _squad  # a small SQuAD file of the generated vocabulary

pytestmark = pytest.mark.heavy  # both int8 modes built, checked and timed

SEQ = 32


def _model(bundle: Path) -> Path:
    return bundle / read_manifest(bundle).model_file


def _onnx_ops(path: Path) -> collections.Counter:
    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def xnnpack_datatypes(pte: Path) -> collections.Counter:
    """Tensor datatypes and node types inside a .pte's XNNPACK delegates, read from the file
    itself (its flatbuffers, decoded with ExecuTorch's flatc and XNNPACK schema). Dynamic int8
    activations are xnn_datatype_qdint8 (quantized per call), static ones xnn_datatype_qint8,
    per-channel int8 weights xnn_datatype_qcint8."""
    from executorch.backends.xnnpack.serialization.xnnpack_graph_serialize import XNNHeader
    from executorch.exir._serialize._flatbuffer import _flatc_decompile
    from executorch.exir._serialize._program import deserialize_pte_binary

    import executorch

    schema = Path(executorch.__path__[0]) / "backends/xnnpack/serialization/schema.fbs"
    counts: collections.Counter = collections.Counter()

    def walk(x):
        if isinstance(x, dict):
            for k, v in x.items():
                if k in ("datatype", "xnode_union_type"):
                    counts[v] += 1
                else:
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    program = deserialize_pte_binary(pte.read_bytes()).program
    assert program.backend_delegate_data, "no XNNPACK delegate in the file"
    for blob in program.backend_delegate_data:
        data = blob.data
        header = XNNHeader.from_bytes(data[:XNNHeader.EXPECTED_LENGTH])
        with tempfile.TemporaryDirectory() as tmp:
            graph = Path(tmp, "graph.bin")
            graph.write_bytes(data[header.flatbuffer_offset:
                                   header.flatbuffer_offset + header.flatbuffer_size])
            _flatc_decompile(tmp, str(schema), str(graph), ["--raw-binary"])
            walk(json.loads(Path(tmp, "graph.json").read_text()))
    return counts


# ------------------------------------------------------------------ real exports

@pytest.fixture(scope="module")
def static_bundles(tmp_path_factory) -> dict[str, Path]:
    """bert-tiny QA, int8 static, ONNX and ExecuTorch (one call: one model load)."""
    cfg = ExportConfig(model="bert-tiny", out=tmp_path_factory.mktemp("static") / "o",
                       targets=["onnx", "executorch"], precisions=["int8"], seq_len=SEQ,
                       int8_mode="static", calibration_samples=4, parity_samples=4)
    return {b.name: b for b in run_export(cfg, log=lambda m: None)}


def test_onnx_static_is_qdq_with_every_large_weight_int8(static_bundles):
    bundle = static_bundles["onnx-int8"]
    m = read_manifest(bundle)
    assert m.parity["status"] == "passed", m.parity
    assert m.notes["int8_mode"] == "static" and "int8_choice" not in m.notes
    ops = _onnx_ops(_model(bundle))
    assert ops["DynamicQuantizeLinear"] == 0 and ops["MatMulInteger"] == 0  # no per-call scaling
    assert ops["QuantizeLinear"] >= 6 and ops["DequantizeLinear"] >= 12  # activations and weights
    # bert-tiny's smallest weight matrix is 128x128: none left fp32, and the file is int8-sized
    assert float_weights(_model(bundle), min_elements=4096) == {}
    assert _model(bundle).stat().st_size < 0.6 * 4 * m.parameters["total"]  # fp32: >= 4 B/param


def test_executorch_static_has_no_dynamic_quantization(static_bundles):
    bundle = static_bundles["executorch-int8"]
    m = read_manifest(bundle)
    assert m.parity["status"] == "passed", m.parity
    assert m.notes["int8_mode"] == "static"
    types = xnnpack_datatypes(_model(bundle))
    assert types["xnn_datatype_qdint8"] == 0, types  # dynamic activations: none
    assert types["xnn_datatype_qint8"] > 0, types  # static int8 activations
    # bert-tiny: 2 layers x 6 linears + the QA head, each with per-channel int8 weights
    assert types["xnn_datatype_qcint8"] >= 13 and types["XNNFullyConnected"] >= 13, types
    assert _model(bundle).stat().st_size < 0.6 * 4 * m.parameters["total"]  # fp32: >= 4 B/param


def test_auto_builds_checks_and_times_every_candidate_then_follows_the_rule(tmp_path):
    out = tmp_path / "o"
    logged: list[str] = []
    cfg = ExportConfig(model="bert-tiny", out=out, targets=["onnx"], precisions=["int8"],
                       seq_len=SEQ, calibration_samples=4, parity_samples=4)
    assert cfg.int8_mode == "auto"  # the default: chosen by measurement
    (bundle,) = run_export(cfg, log=logged.append)
    m = read_manifest(bundle)
    choice = m.notes["int8_choice"]
    assert choice["schema"] == "pocketbert-int8-choice/2" and choice["asked"] == "auto"
    cands = {c["mode"]: c for c in choice["candidates"]}
    assert list(cands) == list(auto_modes(get_target("onnx")))  # the default (dynamic) first
    for c in cands.values():
        assert c["dropped"] is None and c["parity"]["status"] == "passed"
        assert c["parity"]["min_snr_db"] > 15
        assert len(c["samples_ms"]) == TIMING_ROUNDS * CALLS_PER_ROUND
        assert all(s > 0 for s in c["samples_ms"])
        assert c["p50_ms"] == pytest.approx(statistics.median(c["samples_ms"]), abs=0.01)
    # the choice is the rule applied to the recorded figures, whichever is faster here
    expected, reason = choose([Candidate(**c) for c in choice["candidates"]])
    assert choice["chosen"] == expected and choice["reason"] == reason
    assert set(choice["cpu"]) >= {"model", "avx512_vnni", "avx_vnni", "arm_dotprod", "amx_int8", "isa_flags"}
    assert choice["cpu"]["avx512_vnni"] == ("avx512_vnni" in Path("/proc/cpuinfo").read_text())
    assert choice["timing"]["threads"] >= 1 and choice["timing"]["tokens_per_call"] == SEQ
    # the bundle holds the chosen file, checked (its parity is the chosen candidate's), and no
    # leftover candidate
    assert m.notes["int8_mode"] == expected
    assert m.parity["min_snr_db"] == pytest.approx(cands[expected]["parity"]["min_snr_db"])
    ops = _onnx_ops(_model(bundle))
    assert (ops["DynamicQuantizeLinear"] > 0) == (expected != "static")
    # fused attention: packed QAttention (dynamic, per-tensor), MultiHeadAttention (static), none (int-attention)
    attention = {"int-attention": None, "static": "MultiHeadAttention"}.get(expected, "QAttention")
    assert {k for k in ("QAttention", "MultiHeadAttention") if ops[k]} == ({attention} if attention else set())
    assert sorted(p.name for p in bundle.iterdir() if p.name.startswith(".")) == []
    line = [x for x in logged if "int8 auto" in x]
    assert len(line) == 1 and " ms" in line[0] and all(m in line[0] for m in cands)


def test_int_attention_makes_the_attention_matmuls_integer(tmp_path):
    """--int8-mode int-attention: attention left unfused (no MultiHeadAttention) and its two batched
    matmuls per layer MatMulInteger like the linears; SkipLayerNorm/BiasGelu still fused; parity holds."""
    made = {}
    for mode in ("dynamic", "int-attention"):
        cfg = ExportConfig(model="bert-tiny", out=tmp_path / mode, targets=["onnx"], precisions=["int8"],
                           seq_len=SEQ, int8_mode=mode, parity_samples=4)
        (made[mode],) = run_export(cfg, log=lambda m: None)
    plain, ints = (_onnx_ops(_model(made[m])) for m in ("dynamic", "int-attention"))
    layers = plain["QAttention"]  # dynamic: Q, K, V packed into one QAttention per layer
    assert layers == 2 and ints["MultiHeadAttention"] == ints["QAttention"] == 0
    assert ints["MatMulInteger"] == plain["MatMulInteger"] + 5 * layers  # Q, K, V apart; Q.K and P.V
    assert ints["SkipLayerNormalization"] == plain["Sum"] > 0 and ints["BiasGelu"] == layers  # dynamic: split
    m = read_manifest(made["int-attention"])
    assert m.parity["status"] == "passed" and m.parity["min_snr_db"] > 15, m.parity
    assert m.notes["int8_mode"] == "int-attention" and "MatMulInteger" in m.notes["quantization"]


# ------------------------------------------------------------------ CLI

def test_cli_int8_mode_errors(tmp_path, capsys):
    base = ["--model", "bert-tiny", "--seq-len", "16", "--out", str(tmp_path / "o")]
    err = _error(capsys, *base, "--int8-mode", "fast")
    assert "--int8-mode" in err and "unknown int8 mode 'fast'" in err and "auto, blockwise, dynamic, int-attention, per-tensor, static" in err
    data = _squad(tmp_path / "choose.json", 2, seed=1)
    err = _error(capsys, *base, "--target", "onnx", "--precision", "int8", "--int8-guided",
                 f"squad:{data}", "--int8-mode", "static")
    assert "--int8-guided" in err and "static" in err
    assert not (tmp_path / "o").exists()


def test_auto_never_keeps_a_candidate_outside_the_task_gate(tmp_path):
    """With --eval-data, every candidate is scored by the gate; one below the bound is dropped and never
    chosen, whatever its speed. The bound is set between the candidates' own identical-answer shares
    (measured by a first run without a bound), so the second run must drop those below it."""
    data = _squad(tmp_path / "eval.json", 4, seed=2)

    def auto(name: str, bound: float):
        cfg = ExportConfig(model="bert-tiny", out=tmp_path / name, targets=["onnx"], precisions=["int8"],
                           seq_len=SEQ, calibration_samples=4, parity_samples=4, eval_data=f"squad:{data}",
                           eval_questions=12, max_f1_drop=100.0, min_identical_answers=bound)
        (bundle,) = run_export(cfg, log=lambda m: None)
        return read_manifest(bundle).notes["int8_choice"]

    free = auto("free", 0.0)
    shares = {c["mode"]: c["task_eval"]["identical_answers"] for c in free["candidates"]}
    assert set(shares) == set(auto_modes(get_target("onnx"))) and all(c["dropped"] is None for c in free["candidates"])
    if len(set(shares.values())) < 2:
        pytest.skip(f"every candidate keeps the same share of answers here ({shares}): no bound splits them")
    bound = (min(shares.values()) + max(shares.values())) / 2
    gated = auto("gated", bound)
    for c in gated["candidates"]:
        assert (c["dropped"] is not None) == (shares[c["mode"]] < bound), c
    chosen = next(c for c in gated["candidates"] if c["mode"] == gated["chosen"])
    assert chosen["dropped"] is None and chosen["task_eval"]["identical_answers"] >= bound

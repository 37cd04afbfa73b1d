"""scripts/compare_peers.py's table, from a run's records (fast; the script itself needs optimum's
virtualenv and is run by hand): each file's p50 per shape as a speed-up over optimum's fastest int8
file at that shape, and the CPU's int8 features."""

import sys
from pathlib import Path

from test_bench_path import _record

from pocketbert.common import write_json
from bench.records import record_name

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import compare_peers  # noqa: E402


def _write(run: Path, model: str, precision: str, shape: str, ms: float, **kw) -> None:
    rec = _record(model=model, precision=precision, shape=shape, latency_ms=[ms] * 4, n_model_calls=4,
                  machine={"hostname": "h", "cpu_model": "AMD EPYC", "isa_flags": ["avx2", "avx512_vnni"],
                           "load_avg_1m": 0.5}, **kw)
    write_json(run / record_name(rec), rec)


def test_each_file_is_a_speed_up_over_optimums_fastest_int8_per_shape(tmp_path):
    for shape, peer_pt, peer_pc, ours in (("fixed", 90.0, 80.0, 64.0), ("dynamic", 30.0, 24.0, 20.0)):
        _write(tmp_path, "optimum-avx512_vnni-model_quantized", "int8", shape, peer_pt)
        _write(tmp_path, "optimum-avx512_vnni-pc-model_quantized", "int8", shape, peer_pc)
        _write(tmp_path, "optimum-fp32-model", "fp32", shape, 10.0)  # faster, but not int8: not the bar
        _write(tmp_path, "distilbert-base", "int8", shape, ours)
    text = compare_peers.table(tmp_path)
    ours = next(line for line in text.splitlines() if line.startswith("| distilbert-base | onnx | int8"))
    assert "| 64.0 (1.25x) | 20.0 (1.20x) |" in ours  # 80/64 at 384, 24/20 at real length
    slow = next(line for line in text.splitlines() if "optimum-avx512_vnni-model_quantized" in line)
    assert "| 90.0 (0.89x) | 30.0 (0.80x) |" in slow
    assert "CPU int8 features: avx512_vnni." in text


def test_a_bundle_chosen_on_another_cpu_is_named_under_the_table(tmp_path):
    _write(tmp_path, "optimum-avx2-model_quantized", "int8", "fixed", 50.0)
    _write(tmp_path, "distilbert-base", "int8", "fixed", 40.0,
           notes={"int8_chosen_elsewhere": "int8 mode static was chosen by timing on Intel Xeon"})
    assert "distilbert-base onnx int8: int8 mode static was chosen by timing on Intel Xeon" in compare_peers.table(tmp_path)


def test_a_run_of_120_distilbert_questions_at_384_fits_the_records_flop_count(tmp_path):
    # DistilBERT-base QA at 384 tokens is ~35 GFLOP a call: 120 questions x 2 shapes is ~4e12 FLOPs,
    # beyond a 2**40 byte-sized bound (the peers' bench failed writing its first record)
    flops = 120 * 35_000_000_000
    from pocketbert.contracts import Record

    rec = Record.model_validate({**_record(model="distilbert-base", precision="int8", shape="fixed").to_dict(),
                                 "flops_total": flops})
    assert rec.flops_total == flops


def test_repeated_runs_give_the_median_speed_up_and_its_range(tmp_path):
    """--repeat: each run's speed-up is taken against that run's own bar, then the median and range
    over the runs (a noisy VM moves one run's ratio by +-10%); the p50 shown is the median p50."""
    runs = []
    for i, (peer, ours) in enumerate(((50.0, 40.0), (60.0, 40.0), (45.0, 40.0))):  # 1.25x, 1.50x, 1.125x
        run = tmp_path / f"run{i}"
        run.mkdir()
        _write(run, "optimum-avx512_vnni-model_quantized", "int8", "fixed", peer)
        _write(run, "distilbert-base", "int8", "fixed", ours)
        runs.append(run)
    text = compare_peers.table(runs)
    ours = next(line for line in text.splitlines() if line.startswith("| distilbert-base | onnx | int8"))
    assert "| 40.0 (1.25x, 1.12-1.50) |" in ours
    assert "median over 3 `pocketbert bench` runs" in text

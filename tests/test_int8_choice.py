"""The int8 auto choice's rule, as pure functions on recorded figures (fast): which candidate a
measurement keeps, which builds auto measures per target. The real exports that feed it (every
candidate built, checked and timed) are in test_int8_mode.py (heavy)."""

from __future__ import annotations

import pytest

from export.int8_choice import Candidate, auto_modes, chosen_elsewhere, choose, interleaved_ms
from export.targets import get_target


# ------------------------------------------------------------------ the rule, as a pure function

def _cand(mode, p50, dropped=None):
    return Candidate(mode=mode, p50_ms=p50, samples_ms=[p50] * 3, dropped=dropped)


@pytest.mark.parametrize("static_ms, expected", [
    (90.0, "static"),    # 10% faster: beyond the margin
    (94.9, "static"),    # 5.1% faster
    (96.0, "dynamic"),   # 4% faster: within this VM's side-by-side noise
    (100.0, "dynamic"),  # equal
    (120.0, "dynamic"),  # slower
])
def test_static_is_chosen_only_when_clearly_faster(static_ms, expected):
    mode, reason = choose([_cand("dynamic", 100.0), _cand("static", static_ms)])
    assert mode == expected, reason
    assert "static" in reason and "dynamic" in reason and "\n" not in reason


def test_a_candidate_failing_its_checks_is_never_chosen():
    fast_but_broken = _cand("static", 10.0, dropped="parity failed: SNR 9.0 dB < 15.0 dB")
    mode, reason = choose([_cand("dynamic", 100.0), fast_but_broken])
    assert mode == "dynamic" and "SNR 9.0 dB" in reason
    broken_dynamic = _cand("dynamic", 10.0, dropped="task gate failed: F1 drop 5.0 > 3.0")
    mode, reason = choose([broken_dynamic, _cand("static", 100.0)])
    assert mode == "static" and "F1 drop" in reason
    mode, reason = choose([_cand("dynamic", 10.0, dropped="x"), _cand("static", 5.0, dropped="y")])
    assert mode == "dynamic" and "all dropped" in reason  # its failure then fails the export


@pytest.mark.parametrize("times, expected", [
    # dynamic, int-attention, per-tensor, static (ms p50)
    ((100.0, 90.0, 80.0, 99.0), "per-tensor"),  # the fastest of those beyond the margin
    ((100.0, 94.0, 97.0, 98.0), "int-attention"),  # 6% faster, the only one beyond the margin
    ((100.0, 96.0, 97.0, 98.0), "dynamic"),  # all within the margin: the default stays
    ((90.0, 100.0, 95.0, 99.0), "dynamic"),  # the default is fastest
])
def test_of_several_candidates_the_fastest_beyond_the_margin_wins(times, expected):
    modes = ("dynamic", "int-attention", "per-tensor", "static")
    mode, reason = choose([_cand(m, t) for m, t in zip(modes, times)])
    assert mode == expected, reason
    assert all(m in reason for m in modes) and "\n" not in reason  # every median is in the line


def test_a_dropped_default_gives_way_to_the_fastest_that_passes():
    mode, reason = choose([_cand("dynamic", 50.0, dropped="task gate failed: identical 80% < 90%"),
                           _cand("int-attention", 100.0), _cand("per-tensor", 90.0),
                           _cand("static", 10.0, dropped="parity failed")])
    assert mode == "per-tensor" and "80%" in reason and "parity failed" in reason


def test_auto_measures_every_mode_of_a_target_but_blockwise():
    assert auto_modes(get_target("onnx")) == ("dynamic", "int-attention", "per-tensor", "static")
    assert auto_modes(get_target("executorch")) == ("dynamic", "static")


def test_interleaved_timing_rotates_the_order_every_round():
    ran: list[str] = []
    runners = {k: (lambda feed, k=k: ran.append(k)) for k in "abc"}
    samples = interleaved_ms(runners, [{}], rounds=3, calls=1)
    assert ran[:3] == ["a", "b", "c"]  # one warm-up call each
    assert ran[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # each leads one round
    assert {k: len(v) for k, v in samples.items()} == {"a": 3, "b": 3, "c": 3}


# ------------------------------------------------------------------ a bundle timed on another CPU

VNNI = {"model": "AMD EPYC 9R14", "avx512_vnni": True, "isa_flags": ["avx2", "avx512f", "avx512_vnni"]}
CHOSEN = {"int8_choice": {"chosen": "int-attention", "candidates": [{"mode": "dynamic"}], "cpu": VNNI}}


def test_a_choice_timed_on_another_cpu_is_named_with_both_cpus_int8_features():
    arm = {"cpu_model": "4x Cortex-A76 + 4x Cortex-A55", "isa_flags": ["asimd", "asimddp"]}
    line = chosen_elsewhere(CHOSEN, arm)
    assert "int-attention" in line and "AMD EPYC 9R14 (avx512_vnni)" in line
    assert "Cortex-A76" in line and "(asimddp)" in line and "\n" not in line
    assert chosen_elsewhere(CHOSEN, {"cpu_model": "AMD EPYC 9R14", "isa_flags": []}) is None  # same CPU
    assert chosen_elsewhere({"int8_mode": "dynamic"}, arm) is None  # asked by name: nothing was timed
    unmeasured = {"int8_choice": {"chosen": "dynamic", "candidates": [], "cpu": VNNI}}
    assert chosen_elsewhere(unmeasured, arm) is None  # auto resolved without timing (guided, no runtime)


def test_the_bench_report_says_when_a_bundle_was_chosen_on_another_cpu():
    from test_bench_path import _record

    from bench.report import markdown

    line = chosen_elsewhere(CHOSEN, {"cpu_model": "Intel Xeon", "isa_flags": ["avx2"]})
    text = markdown([_record(precision="int8", notes={"int8_chosen_elsewhere": line})])
    assert "## int8 chosen on another CPU" in text  # its line (escaped for Markdown) in a table row
    assert any([c.strip() for c in row.split("|")][1:4] == ["m", "onnx", "int8"] and "AMD EPYC 9R14" in row
               and "Intel Xeon" in row
               for row in text.splitlines())
    assert "another CPU" not in markdown([_record(precision="int8")])

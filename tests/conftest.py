"""Shared test settings: offline, quiet, few threads (CI has 2 cores)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


from tests.shared_bundles import bert_tiny_qa_bundles  # noqa: E402,F401 - a session fixture


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def kotlin_build():
    """All of the Android demo's Kotlin compiled once per session (tests/kotlin_build.py): the app
    layer against the pinned API stubs, qa-core with its tests and the fake phone's JVM main."""
    from tests import kotlin_build as kb

    why = kb.missing_tools()
    if why:
        pytest.skip(why)
    try:
        return kb.compile_all()
    except kb.CompileError as e:
        pytest.fail(f"the Android demo's Kotlin does not compile (app layer against tests/android_stubs):\n{str(e)[-4000:]}",
                    pytrace=False)


# Slow by nature: whole exports, benchmarks and trainings through the pipeline or the CLI, int8 searches.
# They carry the `heavy` marker (CI's second, separately timed step: `pytest -m heavy`); the default
# suite keeps the fast checks of the same code. File -> test names (a function's every parametrization),
# or "*" for the whole file.
HEAVY = {
    "test_bench_harness.py": "*",  # every runtime exported and timed through run_bench
    "test_bench_peers.py": "*",  # our exports next to plain files, through the bench
    "test_bench_quality.py": "*",  # a SQuAD bench run, scored
    "test_export_fusion.py": "*",  # fused and plain ONNX, ExecuTorch 8da4w exports
    "test_int8_mode.py": "*",  # both int8 modes built, checked and timed
    "test_int8_guided.py": "*",  # per-layer int8 search
    "test_int8_blockwise.py": {"test_blockwise_graph_is_int8_matmulnbits_with_the_recorded_settings",
                               "test_blockwise_is_closer_to_fp32_than_per_tensor_int8_on_an_outlier_feature"},
    "test_plugin_runtime_only.py": "*",  # bench and report through the CLI
    "test_plugin_export_only.py": "*",  # export, parity and bench through the CLI
    "test_export.py": {"test_every_target_and_precision_is_built", "test_fp32_parity_is_exact",
                       "test_low_precision_parity_is_close_but_not_exact",
                       "test_bundle_runs_in_its_runtime_like_pytorch",
                       "test_coreml_packages_load_and_record_why_parity_did_not_run",
                       "test_manifest_describes_the_bundle", "test_int8_files_are_smaller",
                       "test_tampered_bundle_is_rejected", "test_other_tasks_and_model_types",
                       "test_parity_bounds_pass_a_correct_int8_export_of_the_same_model",
                       "test_local_folder_round_trip", "test_task_metric_gate_on_a_trained_model"},
    "test_device_ssh.py": {"test_bench_over_ssh_end_to_end", "test_profile_is_made_on_the_board_and_comes_back",
                           "test_board_without_the_runtime_says_how_to_install",
                           "test_timeout_and_ctrl_c_stop_the_worker_on_the_board", "test_dropped_connection_mid_run",
                           "test_full_board_disk_is_a_clear_error"},
    "test_device_adb.py": {"test_bench_on_a_phone_keeps_records_on_disconnect_and_merges",
                           "test_pocketbert_bench_device_adb",
                           "test_bench_device_adb_times_executorch_and_onnx_like_the_desktop"},
    "test_bench_trust.py": {"test_loaded_run_is_noisy_and_strict_fails",
                            "test_each_row_is_judged_against_the_peak_of_its_own_precision",
                            "test_rounds_interleave_and_keep_every_rounds_samples"},
    "test_structure.py": {"test_paper_mode_writes_both_studies_and_the_side_by_side_tables"},
    "test_bench_path.py": {"test_a_bench_run_reads_each_input_once_and_derives_each_figure_once"},
    "test_profile.py": {"test_bench_profile_for_every_local_runtime_and_none_without_it"},  # 3 runtimes benched
    "test_coverage.py": {"test_every_target_writes_consistent_coverage",  # every target x precision exported
                         "test_an_undelegated_executorch_export_shows_low_coverage_and_warns"},
    "test_bench_exports.py": {"test_missing_bundles_are_exported_side_by_side_and_cached",
                              "test_meanwhile_runs_once_while_the_exports_run"},  # exports in parallel processes
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = HEAVY.get(item.path.name)
        if names == "*" or (names and item.originalname in names):
            item.add_marker(pytest.mark.heavy)

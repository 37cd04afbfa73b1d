"""Device-farm artifacts (Firebase Test Lab folders, AWS Device Farm customer-artifact zips) ingested
as benchmark records: nested folders, renamed files, zips in zips, other JSON, broken records."""

import io
import json
import zipfile

from bench.farm import farm_identity, find_farm_records


def record(hostname: str, model: str = "distilbert-tiny", p50: float = 10.0, **kw) -> dict:
    """A record as the demo app writes it (android_demo/BENCHMARK_PROTOCOL.md)."""
    return {"schema": "pocketbert-bench/1", "run_id": "farm-1", "status": "ok", "reason": "", "model": model,
            "model_type": "distilbert", "task": "question-answering", "runtime": "executorch", "precision": "int8",
            "workload": "squad", "workload_source": "in/workload.json", "shape": "dynamic", "seq_len": 384,
            "threads": 4, "threads_effective": None, "warmup": 3, "batch_size": 1,
            "parameters": {"total": 66000000, "non_embedding": 42000000},
            "machine": {"device": "adb", "hostname": hostname, "cpu_model": "Tensor G2", "physical_cores": 8,
                        "os": "Android 13 (API 33)"},
            "versions": {"executorch-android": "1.4.1", "app": "0.1.0"}, "git_revision": "abc",
            "created_utc": f"2026-11-25T21:00:0{len(hostname) % 10}+00:00",
            "item_ids": ["q1", "q2", "q3"], "latency_ms": [p50 - 1, p50, p50 + 1], "tokenize_ms": [0.5] * 3,
            "postprocess_ms": [0.1] * 3, "load_ms": 120.0, "first_inference_ms": 30.0, "n_items": 3,
            "n_model_calls": 4, "tokens": {"real": 700, "fed": 700}, "peak_rss_mb": 180.0,
            "baseline_rss_mb": 90.0, "runtime_rss_mb": 90.0, "answers_sample": ["Denver Broncos"], **kw}


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def artifact_tree(root):
    """Firebase results for two devices, AWS customer artifacts for two more, and noise."""
    fb = root / "firebase" / "2026-11-25_21-00-00.123_abcd"
    a = fb / "oriole-33-en-portrait" / "artifacts" / "sdcard" / "pocketbert" / "bench"
    a.mkdir(parents=True)
    (a / "record.json").write_text(json.dumps(record("oriole")))
    b = fb / "redfin-30-en_US-portrait" / "artifacts" / "sdcard" / "pocketbert"
    b.mkdir(parents=True)
    (b / "1_record.json.txt").write_text(json.dumps(record("redfin", p50=25.0)))  # renamed on the way
    (fb / "oriole-33-en-portrait" / "test_result_1.xml").write_text("<testsuite/>")
    (fb / "oriole-33-en-portrait" / "logcat").write_text("11-25 21:00:00.000 I PocketbertBench: DONE")
    (fb / "matrix.json").write_text(json.dumps({"state": "FINISHED"}))  # other JSON: ignored

    aws = root / "aws" / "Samsung Galaxy S23 - 14"
    aws.mkdir(parents=True)
    inner = zip_bytes({"sdcard/pocketbert/record.json": json.dumps(record("dm3q", model="bert-tiny")).encode()})
    (aws / "00012_Customer_Artifacts.zip").write_bytes(zip_bytes({
        "Host_Machine_Files/$DEVICEFARM_LOG_DIR/record.json": json.dumps(record("dm3q")).encode(),
        "Host_Machine_Files/$DEVICEFARM_LOG_DIR/more.zip": inner,  # a zip in the zip
        "Host_Machine_Files/$DEVICEFARM_LOG_DIR/broken.json": json.dumps(
            record("dm3q", model="broken", latency_ms=[])).encode(),  # ok without samples
        "Host_Machine_Files/$DEVICEFARM_LOG_DIR/notes.txt": b"hello",
    }))
    # the same record also unpacked next to its zip: counted once
    (aws / "record.json").write_text(json.dumps(record("dm3q")))
    return root


def test_farm_artifacts_become_records(tmp_path):
    warnings = []
    recs = find_farm_records([artifact_tree(tmp_path)], warn=warnings.append)
    by = {(r.machine.hostname, r.model): r for r in recs}
    assert sorted(by) == [("dm3q", "bert-tiny"), ("dm3q", "distilbert-tiny"), ("oriole", "distilbert-tiny"),
                          ("redfin", "distilbert-tiny")]
    oriole = by["oriole", "distilbert-tiny"].machine
    assert oriole.device == "firebase" and oriole.farm["api_level"] == 33
    assert oriole.farm["model_id"] == "oriole" and oriole.farm["orientation"] == "portrait"
    assert by["redfin", "distilbert-tiny"].machine.farm["locale"] == "en_US"
    aws = by["dm3q", "bert-tiny"]
    assert aws.machine.device == "aws-devicefarm"
    assert aws.machine.farm["device_dir"] == "Samsung Galaxy S23 - 14"
    assert aws.source.endswith("00012_Customer_Artifacts.zip!Host_Machine_Files/$DEVICEFARM_LOG_DIR/more.zip"
                                 "!sdcard/pocketbert/record.json")
    assert len(warnings) == 1 and "broken.json" in warnings[0] and "latency" in warnings[0]


def test_a_single_zip_and_identity_rules(tmp_path):
    z = tmp_path / "Customer Artifacts.zip"
    z.write_bytes(zip_bytes({"record.json": json.dumps(record("husky")).encode()}))
    (recs,) = [find_farm_records([z])]
    assert len(recs) == 1 and recs[0].machine.device == "aws-devicefarm"
    assert farm_identity("results/panther-34-fr-landscape/artifacts/x.json")["api_level"] == 34
    assert farm_identity("somewhere/phone7/record.json") == {"provider": "farm", "device_dir": "phone7"}


def test_pocketbert_report_ingests_farm_artifacts(tmp_path, capsys):
    from pocketbert.cli import main

    tree = artifact_tree(tmp_path / "farm")
    z = tmp_path / "Customer Artifacts.zip"  # a zip passed directly
    z.write_bytes(zip_bytes({"a/record.json": json.dumps(record("husky", p50=40.0)).encode()}))
    assert main(["report", "--farm", str(tree), str(z), "--out", str(tmp_path / "merged")]) == 0
    report = (tmp_path / "merged" / "report.md").read_text()
    for machine in ("firebase:oriole", "firebase:redfin", "aws-devicefarm:dm3q", "aws-devicefarm:husky"):
        assert f"## {machine}" in report
    assert "broken.json" in capsys.readouterr().err  # said why it was left out


def test_farm_layouts_are_read_only_when_asked(tmp_path):
    """A results folder is read for its record files only: a zip or a renamed record file inside it is
    a device farm's layout, opened with --farm (load_records(farm=True)) or when the zip is given by name."""
    from bench.records import load_records

    results = tmp_path / "results"
    results.mkdir()
    (results / "phone.json").write_text(json.dumps(record("plain")))
    (results / "1_record.json.txt").write_text(json.dumps(record("renamed")))
    z = results / "Customer Artifacts.zip"
    z.write_bytes(zip_bytes({"sdcard/record.json": json.dumps(record("zipped")).encode()}))
    assert [r.machine.hostname for r in load_records([results])] == ["plain"]
    assert sorted(r.machine.hostname for r in load_records([results], farm=True)) == ["plain", "renamed", "zipped"]
    [zipped] = load_records([z])  # a zip given by name is a farm artifact
    assert zipped.machine.hostname == "zipped" and zipped.source.endswith("Customer Artifacts.zip!sdcard/record.json")

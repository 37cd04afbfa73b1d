"""One typed path through the bench: each input is read once per run (the workload's file, each
bundle's manifest), statistics are derived once and stored, trust is judged once per worker result,
and reports print what the records store."""

import json
from pathlib import Path

import pytest

from bench.records import derive, load_records, record_name
from bench.report import csv_text, headline, markdown, render_report
from pocketbert.common import write_json
from pocketbert.contracts import Record, WorkerResult

SEQ = 32


def _record(**kw) -> Record:
    rec = Record(run_id="r", model="m", runtime="onnx", precision="fp32", workload="synthetic", shape="dynamic",
                 seq_len=SEQ, threads=1, n_items=4, item_ids=["a", "b", "c", "d"],
                 latency_ms=[10.0, 20.0, 30.0, 40.0], tokenize_ms=[0.1] * 4, postprocess_ms=[0.2] * 4,
                 tokens={"real": 40, "fed": 40}, machine={"hostname": "h", "logical_cores": 2},
                 parameters={"total": 10, "non_embedding": 5}, load_ms=1.0, first_inference_ms=2.0,
                 peak_rss_mb=10.0, runtime_rss_mb=5.0, trust={"other_cpu_cores": 0.0})
    return derive(rec.replace(**kw))


def test_the_report_prints_the_records_stored_statistics_not_its_own(tmp_path):
    rec = _record()
    assert rec.stats.latency_ms.p50 == 25.0
    rec = rec.replace(latency_ms=[1.0, 2.0, 3.0, 400.0])  # samples edited after the record was built: its stats stand
    write_json(tmp_path / record_name(rec), rec)
    [back] = load_records([tmp_path])
    assert back.stats.latency_ms.p50 == 25.0
    assert "p50 25.0 ms per item" in headline([back])[0]
    rows = [[c.strip() for c in line.split("|")] for line in markdown([back]).splitlines()]
    cells = next(row for row in rows if row[1:3] == ["m", "onnx"])
    assert "25.00" in cells and "2.50" not in cells
    header, row = csv_text([back]).splitlines()[:2]
    assert dict(zip(header.split(","), row.split(",")))["latency_p50_ms"] == "25.0"  # the stored value
    render_report([tmp_path], tmp_path)
    assert "p50 25.0 ms per item" in (tmp_path / "report.md").read_text()


def test_a_record_that_came_without_statistics_gets_them_once_when_read(tmp_path):
    rec = {k: v for k, v in _record().to_dict().items() if k not in ("stats", "total_model_s")}
    rec["trust"] = {"other_cpu_cores": 1.9}  # a device app's record: raw samples and evidence, no verdict
    write_json(tmp_path / "device.json", rec)
    [back] = load_records([tmp_path])
    assert back.stats.latency_ms.p50 == 25.0 and back.total_model_s == pytest.approx(0.1)
    assert back.trust.noisy and "other processes used 1.90 cores" in back.trust.reasons[0]


def test_a_worker_result_is_a_typed_contract():
    result = WorkerResult(latency_ms=[1.0, 2.0], postprocess_ms=[0.1, 0.1], trust={"steal_pct": 0.1})
    assert WorkerResult.from_json(result.to_json()) == result
    schema = {"schema": WorkerResult.SCHEMA}
    assert WorkerResult.from_dict({**schema, "error": "timed out after 2 s"}).error == "timed out after 2 s"
    with pytest.raises(Exception, match="one latency and one postprocess sample per item"):
        WorkerResult.from_dict({**schema, "latency_ms": [1.0], "postprocess_ms": []})
    with pytest.raises(Exception, match="latency_ms must be a list of numbers"):
        WorkerResult.from_dict({**schema, "latency_ms": ["1"], "postprocess_ms": [0.1]})


@pytest.mark.heavy
def test_a_bench_run_reads_each_input_once_and_derives_each_figure_once(tmp_path, monkeypatch):
    """A real local run (bert-tiny, ONNX fp32, padded and real length: two records, one bundle) with
    counters on the parent's reads of the workload file and the manifest, its workload parses, its
    statistics and its trust verdicts. Run twice: exported first, then from the cache."""
    import bench.harness
    import bench.records
    import bench.trust
    import bench.workloads
    import pocketbert.readers
    from bench.harness import BenchConfig, run_bench

    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [{
        "context": "The cat sat on the mat. It was a sunny day in the town of Oxford.",
        "qas": [{"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": 0}]}
                for i, (q, a) in enumerate([("Where did the cat sit?", "The cat"), ("Which town?", "The cat")])]}]}]}))
    counts: dict[str, int] = {}

    def count(name, fn):
        def wrapper(*a, **kw):
            counts[name] = counts.get(name, 0) + 1
            return fn(*a, **kw)
        return wrapper

    read_text, read_bounded = Path.read_text, pocketbert.readers.read_bytes_bounded

    def counted(path):
        path = Path(path)
        key = "manifest reads" if path.name == "manifest.json" else "workload file reads" if path == squad else None
        if key:
            counts[key] = counts.get(key, 0) + 1

    def counted_read_text(self, *a, **kw):
        counted(self)
        return read_text(self, *a, **kw)

    def counted_read_bounded(path, *a, **kw):  # every checked read (pocketbert.readers) goes through it
        counted(path)
        return read_bounded(path, *a, **kw)

    monkeypatch.setattr(Path, "read_text", counted_read_text)
    monkeypatch.setattr(pocketbert.readers, "read_bytes_bounded", counted_read_bounded)
    monkeypatch.setattr(bench.workloads, "parse_spec", count("workload parses", bench.workloads.parse_spec))
    monkeypatch.setattr(bench.records, "summarize", count("summaries", bench.records.summarize))
    judge = count("trust verdicts", bench.trust.judge)
    for module in (bench.harness, bench.records, bench.trust):
        monkeypatch.setattr(module, "judge", judge)

    def run(run_id):
        counts.clear()
        cfg = BenchConfig(models=["bert-tiny"], runtimes=["onnx"], precisions=["fp32"], workloads=[f"squad:{squad}"],
                          shapes=["fixed", "dynamic"], seq_len=SEQ, threads=1, warmup=0, out=tmp_path / "res",
                          run_id=run_id, bundle_cache=tmp_path / "cache", quiet=True, pace_retries=0)
        out = run_bench(cfg, log=lambda *a: None)
        records = load_records([out])
        assert [r.status for r in records] == ["ok", "ok"], [r.reason for r in records]
        return dict(counts)

    expected = {"manifest reads": 1, "workload file reads": 1, "workload parses": 1,
                "summaries": 2 * 4,  # two records, four sample series each: derived once, when built
                "trust verdicts": 2}  # one per worker result; the report judges nothing
    assert run("exported") == expected
    assert run("cached") == expected


def test_two_bundles_of_one_model_runtime_and_precision_keep_a_record_each(tmp_path):
    # A plain and a guided ONNX int8 of one model in one run: the second used to overwrite the first.
    from bench.harness import RecordWriter

    writer = RecordWriter(tmp_path / "run", log=lambda msg: None)
    for bundle in ("/b/teacher/onnx-int8-ungated/onnx-int8", "/b/teacher/onnx-int8-guided/onnx-int8"):
        writer.write(_record(bundle=bundle))
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["m-onnx-fp32-synthetic-dynamic.json", "m-onnx-fp32-synthetic-dynamic~onnx-int8-guided.json"]
    assert {json.loads((tmp_path / "run" / n).read_text())["bundle"] for n in names} == {
        "/b/teacher/onnx-int8-ungated/onnx-int8", "/b/teacher/onnx-int8-guided/onnx-int8"}

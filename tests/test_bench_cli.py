"""`pocketbert bench` / `pocketbert report` argument and input errors: one line, exit code 2."""

import json

import pytest

from pocketbert.cli import main


def _err(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("argv, message", [
    (["bench", "--runtime", "tflite"], "unknown runtime 'tflite': choose one of coreml, executorch, onnx, pytorch"),
    (["bench", "--workload", "glue"], "unknown workload 'glue'"),
    (["bench", "--workload", "stsb:/nonexistent/dev.tsv"], "stsb data file /nonexistent/dev.tsv not found"),
    (["bench", "--precision", "int4"], "unknown precision 'int4'"),
    (["bench", "--model", "gpt-9"], "model 'gpt-9' is neither a preset"),
    (["bench", "--bundle", "/nonexistent"], "argument --bundle: /nonexistent not found"),
    (["bench", "--seq-len", "4"], "argument --seq-len: must be 16..512, got 4"),
    (["bench", "--limit", "0"], "argument --limit: must be at least 1, got 0"),
])
def test_bench_usage_errors(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    err = _err(capsys)
    assert err.startswith("pocketbert bench: error:") and message in err
    assert not any(tmp_path.iterdir())  # nothing started, nothing written


def test_malformed_squad_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "squad.json"
    bad.write_text(json.dumps({"data": [{"paragraphs": [{"context": "x"}]}]}))
    out = tmp_path / "res"
    rc = main(["bench", "--model", "distilbert-tiny", "--runtime", "onnx", "--workload", f"squad:{bad}",
               "--seq-len", "32", "--out", str(out), "--quiet"])
    assert rc == 2
    assert "malformed article/paragraph/question (missing 'qas')" in _err(capsys)


def test_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no benchmark records" in _err(capsys)
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "not found" in _err(capsys)


def test_help_is_fast_and_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "--paper" in capsys.readouterr().out

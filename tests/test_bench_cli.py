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


def test_help_lists_every_subcommand_and_imports_no_heavy_library():
    """`pocketbert --help` and each command's --help: every subcommand listed, and not one heavy
    runtime imported to say so (what keeps help instant; no clock involved)."""
    import subprocess
    import sys
    from pathlib import Path

    from pocketbert.cli import SUBCOMMANDS

    heavy = ("torch", "transformers", "onnxruntime", "onnx", "executorch", "coremltools", "tqdm")
    code = ("import sys\nfrom pocketbert.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print('IMPORTED', sorted(m for m in {heavy!r} if m in sys.modules))")
    root = Path(__file__).resolve().parents[1]
    helps = {}
    for argv in ([], *([name] for name in SUBCOMMANDS)):
        out = subprocess.run([sys.executable, "-c", code, *argv, "--help"], capture_output=True, text=True,
                             cwd=root, timeout=120).stdout
        assert "IMPORTED []" in out, (argv, out[-300:])
        helps[" ".join(argv)] = out
    assert all(name in helps[""] for name in SUBCOMMANDS), helps[""]
    assert "--paper" in helps["bench"] and "--target" in helps["export"]  # each command's own flags

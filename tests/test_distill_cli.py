"""`pocketbert distill`: fast --help (no torch at import), one-line errors with exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from pocketbert.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_cli_module_does_not_import_torch():
    code = ("import sys; import pocketbert.cli as c; c.build_parser(); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


@pytest.mark.parametrize("argv, msg", [
    (["--teacher", "bert-tiny", "--data", "/nonexistent.txt", "--out", "{tmp}/o"], "not found"),
    (["--teacher", "bert-tiny", "--out", "{tmp}/o"], "--teacher and --data are required"),
    (["--teacher", "bert-tiny", "--data", "{corpus}", "--student-layers", "0,3", "--out", "{tmp}/o"],
     "out of range"),
    (["--teacher", "./no-such-folder", "--data", "{corpus}", "--out", "{tmp}/o"], "not found"),
    (["--out", "{tmp}/o", "--resume"], "nothing to resume"),
    (["--task", "regression", "--teacher", "bert-tiny", "--out", "{tmp}/o"], "--train-file"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, capsys, argv, msg):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the model is a small student of the teacher\n" * 20)
    argv = [a.format(tmp=tmp_path, corpus=corpus) for a in argv]
    assert main(["distill", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pocketbert distill") and "error:" in err[0] and msg in err[0], err


def test_cli_runs_and_resumes(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(f"the model number {i} is a small student of the teacher\n"
                              for i in range(40)))
    out = tmp_path / "run"
    args = ["distill", "--teacher", "bert-tiny", "--data", str(corpus), "--out", str(out),
            "--batch-size", "4", "--max-steps", "3", "--save-every", "1", "--no-progress"]
    assert main(args) == 0
    assert (out / "student" / "config.json").exists()
    assert main(args) == 2  # refuses to overwrite a finished run
    assert "not empty" in capsys.readouterr().err
    assert main(["distill", "--out", str(out), "--resume", "--no-progress"]) == 0  # already done

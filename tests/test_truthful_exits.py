"""Issue 20: exit codes and messages that say what happened. Options a mode would ignore are refused
in one line (exit 2, nothing created); an interrupt says what it keeps on disk."""

from __future__ import annotations

import json

import pytest

from pocketbert.cli import main


def _run(argv, capsys) -> tuple[int, list[str]]:
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("argv, says", [
    (["export", "--model", "bert-tiny", "--target", "coreml", "--seq-len", "64", "--coreml-seq-lens", "32", "128"],
     "exceeds --seq-len 64"),
    (["export", "--model", "bert-tiny", "--target", "onnx", "--coreml-seq-lens", "32"], "--target coreml only"),
    (["bench", "--paper", "--workload", "synthetic", "stsb:{data}"], "--workload: applies with no --paper"),
    (["bench", "--stsb", "{data}"], "--stsb: applies with --paper (else use --workload"),
])
def test_an_option_the_mode_would_ignore_is_refused_in_one_line(argv, says, tmp_path, capsys, monkeypatch):
    data = tmp_path / "dev.tsv"
    data.write_text("index\tsentence1\tsentence2\tscore\n0\ta b\tc d\t1.0\n")
    monkeypatch.chdir(tmp_path)
    argv = [a.format(data=data) for a in argv] + ["--out", "o"]
    rc, err = _run(argv, capsys)
    assert rc == 2 and len(err) == 1 and says in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.tsv"]


def test_resume_refuses_a_setting_it_would_ignore(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"config": {"teacher": "bert-tiny", "save_every": 50}}))
    rc, err = _run(["distill", "--out", str(out), "--resume", "--save-every", "7"], capsys)
    assert rc == 2 and len(err) == 1 and "--save-every" in err[0] and "--resume" in err[0], err
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]


def test_an_interrupt_says_what_it_keeps_on_disk(monkeypatch, capsys, tmp_path):
    import export.cli
    from pocketbert.common import kept_on_disk, note_kept

    def work(args):
        note_kept(f"checkpoints in {tmp_path} (continue with --resume)")
        raise KeyboardInterrupt

    monkeypatch.setattr(export.cli, "run", work)
    rc, err = _run(["export", "--model", "bert-tiny", "--out", str(tmp_path / "o")], capsys)
    assert rc == 130 and err == [f"pocketbert export: interrupted; kept on disk: checkpoints in {tmp_path} "
                                 "(continue with --resume)"], err
    assert kept_on_disk() == []  # the next command starts clean
    monkeypatch.setattr(export.cli, "run", lambda args: (_ for _ in ()).throw(KeyboardInterrupt()))
    rc, err = _run(["export", "--model", "bert-tiny", "--out", str(tmp_path / "o")], capsys)
    assert err == ["pocketbert export: interrupted; nothing partial was left behind"], err


def test_an_ssh_device_without_ssh_on_path_is_one_line_and_leaves_no_temp_folder(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no `ssh` anywhere
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    monkeypatch.chdir(tmp_path)
    rc, err = _run(["bench", "--model", "bert-tiny", "--device", "ssh://pi@127.0.0.1", "--out", "o"], capsys)
    assert rc == 2 and len(err) == 1 and "needs the OpenSSH client" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]  # no pb-ssh-* folder, no run folder


@pytest.mark.parametrize("err, says", [
    (OSError(28, "No space left on device", "/r/report.md"), "cannot write /r/report.md: No space left on device; "
                                                             "the disk is full"),
    (OSError(30, "Read-only file system", "/r/report.md"), "that file system is read-only: write elsewhere (--out)"),
    (RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file: "
                  "No space left on device"), "the disk is full"),
])
def test_a_full_or_read_only_disk_is_one_line_with_a_hint(err, says, tmp_path, capsys, monkeypatch):
    # As root (CI) no folder is read-only and no disk can be filled safely: the writer is made to fail the
    # way the kernel (or a C++ writer) reports it, and the command must say so, not "internal error".
    import bench.report_cli

    def fail(results, out, **settings):
        raise err
    monkeypatch.setattr(bench.report_cli, "render_report", fail)
    rc, err_lines = _run(["report", str(tmp_path)], capsys)
    assert rc == 1 and len(err_lines) == 1 and says in err_lines[0], err_lines
    assert "internal error" not in err_lines[0]


@pytest.mark.parametrize("flag", ["--int8-guided"])  # --eval-data goes through the same reader
def test_a_seq_len_that_explodes_the_eval_windows_is_refused_in_one_line(flag, tmp_path, capsys, monkeypatch):
    context = " ".join(["the quick brown fox jumps over the lazy dog near the river bank"] * 40)
    qas = [{"id": f"q{i}", "question": "what jumps over the dog?",
            "answers": [{"text": "the quick brown fox", "answer_start": 0}]} for i in range(5)]
    (tmp_path / "sq.json").write_text(json.dumps(
        {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}))
    monkeypatch.chdir(tmp_path)
    rc, err = _run(["export", "--model", "bert-tiny", "--task", "question-answering", "--target", "onnx",
                    "--precision", "int8", "--seq-len", "32", flag, "squad:sq.json", "--out", "o"], capsys)
    assert rc == 2 and f"{flag}: at --seq-len 32 the first 5 questions of sq.json make more than 40 windows" \
        in err[-1], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sq.json"]

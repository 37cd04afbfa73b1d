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
    (["bench", "--paper", "--workload", "synthetic", "stsb:{data}"], "not --workload"),
    (["bench", "--stsb", "{data}"], "add --paper"),
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

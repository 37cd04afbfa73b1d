"""Training never saves garbage and bad settings leave nothing behind (issue 13, distill part):
invalid knobs fail first with one line naming the flag; a non-finite loss stops the run and keeps
the last good checkpoint; a failed early step removes the folder it created."""

import json
import random

import pytest
import torch

from distill.pretrain import DistillConfig, distill
from distill.task import TaskConfig, distill_task
from pocketbert.cli import main
from pocketbert.common import CheckFailed, UsageError
from pocketbert.models import _COMMON_WORDS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    rng = random.Random(0)
    path.write_text("".join(" ".join(rng.choice(_COMMON_WORDS) for _ in range(rng.randint(3, 30)))
                            + "\n" for _ in range(96)))
    return path


def _cfg(corpus, out, **kw):
    base = dict(teacher="bert-tiny", data=[str(corpus)], out=str(out), batch_size=4, grad_accum=1,
                max_steps=6, save_every=2, log_every=1, max_len=32, progress=False, seed=3)
    base.update(kw)
    return DistillConfig(**base)


# issue 13 #2 and #7: each of these was a NaN student with exit 0, or a traceback with config.json
# and data/ left behind.
BAD_PRETRAIN = [("--temperature", "0"), ("--temperature", "-1"), ("--batch-size", "0"),
                ("--grad-accum", "0"), ("--save-every", "0"), ("--lr", "-1"), ("--lr", "0"),
                ("--mlm-prob", "1.5"), ("--mlm-prob", "0"), ("--max-steps", "-1"),
                ("--epochs", "0"), ("--warmup", "1"), ("--warmup", "-0.1"), ("--max-len", "1"),
                ("--keep-checkpoints", "-1"), ("--dropout", "1"), ("--alpha-ce", "-1"),
                ("--fit-mlm-head", "-2"), ("--min-len", "0")]


@pytest.mark.parametrize("flag, value", BAD_PRETRAIN)
def test_cli_rejects_bad_setting_first_and_creates_nothing(tmp_path, capsys, corpus, flag, value):
    out = tmp_path / "out"
    argv = ["distill", "--teacher", "bert-tiny", "--data", str(corpus), "--max-len", "64",
            "--batch-size", "4", "--max-steps", "3", "--out", str(out), "--no-progress", flag, value]
    try:
        rc = main(argv)
    except SystemExit as e:  # an argparse-level validator may answer first: same contract
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and flag in err[-1], err
    assert not out.exists()  # no config.json, no data/


@pytest.mark.parametrize("field, value, flag", [
    ("temperature", 0.0, "--temperature"), ("batch_size", 0, "--batch-size"),
    ("grad_accum", 0, "--grad-accum"), ("save_every", 0, "--save-every"), ("lr", -1.0, "--lr"),
    ("mlm_prob", 1.5, "--mlm-prob"), ("log_every", 0, "--log-every"), ("device", "tpu", "--device"),
    ("amp", "fp8", "--amp"), ("init", "zeros", "--init")])
def test_pipeline_validates_config_before_any_file(tmp_path, corpus, field, value, flag):
    out = tmp_path / "out"
    with pytest.raises(UsageError, match=flag) as e:
        distill(_cfg(corpus, out, **{field: value}))
    assert "\n" not in str(e.value)
    assert not out.exists()


@pytest.mark.parametrize("field, value, flag", [
    ("temperature", 0.0, "--temperature"), ("batch_size", 0, "--batch-size"), ("lr", 0.0, "--lr"),
    ("epochs", 0, "--epochs"), ("max_steps", -1, "--max-steps"), ("warmup", 1.0, "--warmup"),
    ("doc_stride", 64, "--doc-stride"), ("task", "ner", "--task")])
def test_task_config_validates_before_any_file(tmp_path, field, value, flag):
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\ngood film\t1\nbad film\t0\n")
    out = tmp_path / "out"
    cfg = TaskConfig(train_file=str(train), out=str(out), max_len=64, doc_stride=16, progress=False)
    if field == "doc_stride":
        cfg.task = "question-answering"  # the stride only matters for QA windows
    setattr(cfg, field, value)
    with pytest.raises(UsageError, match=flag):
        distill_task(cfg)
    assert not out.exists()


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(corpus, tmp_path):
    """A run that diverges (here: a weight poisoned after step 2 by a hook, as a too-high lr does)
    stops at the next step with one line; checkpoint 2 stays the latest and is finite; no student."""
    out = tmp_path / "run"

    def poison(end):
        if end.step == 2:
            with torch.no_grad():
                next(end.student.parameters()).fill_(float("nan"))

    with pytest.raises(CheckFailed, match="non-finite loss at step 3") as e:
        distill(_cfg(corpus, out), on_step=[poison])
    assert "\n" not in str(e.value) and "ckpt-0000002.pt is kept" in str(e.value)
    ck = out / "checkpoints"
    assert json.loads((ck / "latest.json").read_text())["step"] == 2
    assert sorted(p.name for p in ck.glob("ckpt-*.pt")) == ["ckpt-0000002.pt"]
    state = torch.load(ck / "ckpt-0000002.pt", map_location="cpu", weights_only=False)
    assert all(torch.isfinite(v).all() for v in state["student"].values())
    assert not (out / "student").exists()


def test_non_finite_loss_before_any_checkpoint_leaves_nothing(corpus, tmp_path):
    out = tmp_path / "run"

    def poison(end):
        with torch.no_grad():
            next(end.student.parameters()).fill_(float("inf"))

    with pytest.raises(CheckFailed, match="non-finite"):
        distill(_cfg(corpus, out, save_every=100), on_step=[poison])
    assert not out.exists()


def test_failed_first_step_removes_what_it_created(corpus, tmp_path):
    """96 sequences cannot fill one step of 64 x 4: the run fails after tokenizing; no config.json
    or data/ is left behind."""
    out = tmp_path / "run"
    with pytest.raises(UsageError, match="fewer than one optimizer step"):
        distill(_cfg(corpus, out, batch_size=64, grad_accum=4))
    assert not out.exists()


def test_task_non_finite_loss_saves_no_student(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\n" + "good film\t1\nbad film\t0\n" * 8)
    out = tmp_path / "o"
    with pytest.raises(CheckFailed, match="non-finite loss"):
        distill_task(TaskConfig(train_file=str(train), out=str(out), max_steps=3, batch_size=4,
                                lr=1e30, warmup=0.0, max_len=16, progress=False))
    assert not out.exists()

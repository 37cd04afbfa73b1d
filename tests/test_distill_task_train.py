"""Task distillation's training path on tiny seeded models: exact resume after SIGKILL, 2-process
DDP, transfer data whose gold is never read, intermediate-layer matching with its recorded layer
map, the teacher cache, and one-line errors for a bad transfer file or layer map."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distill.task import TaskConfig, distill_task
from pocketbert.common import UsageError
from test_distill_task import _squad  # synthetic SQuAD: one answer word among filler words

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("qa")
    return {"train": _squad(d / "train.json", 24, 0), "transfer": _squad(d / "transfer.json", 24, 5),
            "dev": _squad(d / "dev.json", 12, 1)}


def _cfg(data, out, **kw):
    base = dict(task="question-answering", teacher="bert-tiny", train_file=str(data["train"]),
                transfer_file=str(data["transfer"]), batch_size=4, grad_accum=2, max_steps=6,
                save_every=2, lr=2e-3, max_len=48, doc_stride=16, out=str(out), progress=False, seed=3)
    base.update(kw)
    return TaskConfig(**base)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))


def _assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)


def _differs(a, b) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_resume_after_sigkill_is_bit_identical(data, tmp_path):
    ref = tmp_path / "ref"
    distill_task(_cfg(data, ref))
    out = tmp_path / "killed"
    # the run with a step hook that SIGKILLs the process right after step 4's checkpoint
    # the same intra-op thread count as this process (an earlier test may have changed it): CPU
    # reductions split by thread count, and bit-identity needs the same split
    code = (f"import os, signal, torch; torch.set_num_threads({torch.get_num_threads()}); "
            "from distill.task import TaskConfig, distill_task; "
            "kill = lambda end: end.step == 4 and os.kill(os.getpid(), signal.SIGKILL); "
            f"distill_task(TaskConfig(**{_cfg(data, out).__dict__!r}), on_step=[kill])")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (out / "student").exists()
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["step"] == 4
    distill_task(_cfg(data, out), resume="latest")
    _assert_same(_weights(out / "student"), _weights(ref / "student"))  # bit for bit
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [6]  # LOG_EVERY = 10: the last step only, once
    with pytest.raises(UsageError, match="does not match this run .*batch_size"):
        distill_task(_cfg(data, out, batch_size=2), resume="latest")


def _ddp_worker(rank, world, port, cfg_dict):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    distill_task(TaskConfig(**cfg_dict))


def test_two_process_ddp_matches_one_process(data, tmp_path):
    import socket

    import torch.multiprocessing as mp

    single = tmp_path / "single"
    distill_task(_cfg(data, single, grad_accum=2, max_steps=3, save_every=3))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ddp = tmp_path / "ddp"
    mp.spawn(_ddp_worker, args=(2, port, _cfg(data, ddp, grad_accum=1, max_steps=3, save_every=3).__dict__),
             nprocs=2, join=True)
    # qa_outputs.bias is left out: softmax is shift-invariant, so its gradient is exactly 0 in exact
    # arithmetic and Adam turns the rounding noise of two summation orders into lr-sized steps
    ddp_w, single_w = _weights(ddp / "student"), _weights(single / "student")
    for w in (ddp_w, single_w):
        w.pop("qa_outputs.bias")
    _assert_same(ddp_w, single_w, atol=1e-5)
    assert json.loads((ddp / "metrics.json").read_text())["world_size"] == 2


def test_transfer_gold_is_never_read(data, tmp_path):
    """Corrupting every gold answer of the transfer file (wrong text, wrong type, none at all)
    gives the same student, bit for bit; dropping the transfer file gives another one."""
    doc = json.loads(Path(data["transfer"]).read_text())
    for para in doc["data"][0]["paragraphs"]:
        qa = para["qas"][0]
        qa["answers"] = [{"text": {"not": "a string"}, "answer_start": "nowhere"}] \
            if int(qa["id"].split("-")[1]) % 2 else [{"text": "x", "answer_start": 10**9}]
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text(json.dumps(doc))
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    ma = distill_task(_cfg(data, a, max_steps=3))
    distill_task(_cfg(data, b, max_steps=3, transfer_file=str(corrupt)))
    distill_task(_cfg(data, c, max_steps=3, transfer_file=None))
    _assert_same(_weights(a / "student"), _weights(b / "student"))
    assert _differs(_weights(a / "student"), _weights(c / "student"))
    assert ma["transfer_windows"] > 0 and ma["transfer_examples"] == 24


def test_layer_matching_changes_the_student_and_records_the_map(data, tmp_path):
    """bert-tiny has 2 layers; a student copying layer 0 matches teacher layer 2 by default
    (uniform map, last to last). The hidden/attention terms change the student, are logged,
    and the map is recorded in config.json, metrics.json and the student's distill_info.json."""
    plain, matched = tmp_path / "plain", tmp_path / "matched"
    distill_task(_cfg(data, plain, student_layers="0", max_steps=3))
    m = distill_task(_cfg(data, matched, student_layers="0", max_steps=3, alpha_hidden=1.0, alpha_attn=1.0))
    assert _differs(_weights(plain / "student"), _weights(matched / "student"))
    assert m["layer_map"] == [2] and {"hidden", "attn"} <= set(m["final_loss"])
    assert m["final_loss"]["hidden"] > 0 and m["final_loss"]["attn"] > 0
    assert json.loads((matched / "config.json").read_text())["layer_map"] == [2]
    assert json.loads((matched / "student" / "distill_info.json").read_text())["layer_map"] == [2]
    explicit = distill_task(_cfg(data, tmp_path / "explicit", student_layers="0", max_steps=1,
                                 alpha_hidden=1.0, layer_map="1"))
    assert explicit["layer_map"] == [1]
    assert not (plain / "teacher-cache").exists() or any((plain / "teacher-cache").glob("logits-*.pt"))
    assert not any((matched / "teacher-cache").glob("logits-*.pt"))  # the teacher ran every step


def test_teacher_cache_is_shared_and_keyed(data, tmp_path):
    cache = tmp_path / "cache"
    distill_task(_cfg(data, tmp_path / "one", max_steps=1, teacher_cache=str(cache),
                      eval_file=str(data["dev"])))
    files = sorted(p.name for p in cache.iterdir())
    assert [f.split("-")[0] for f in files] == ["logits", "scores"]
    before = {p: p.stat().st_mtime_ns for p in cache.iterdir()}
    m = distill_task(_cfg(data, tmp_path / "two", max_steps=1, teacher_cache=str(cache),
                          eval_file=str(data["dev"]), student_layers="1"))
    assert {p: p.stat().st_mtime_ns for p in cache.iterdir()} == before  # reused, not rewritten
    assert m["teacher"]["n"] == 12 and "f1_retention_pct" in m
    distill_task(_cfg(data, tmp_path / "three", max_steps=1, teacher_cache=str(cache), max_len=20, doc_stride=4))
    assert len(list(cache.glob("logits-*.pt"))) == 2  # other windows: another entry


class _RunsCode:
    """A pickle that runs code when loaded without weights_only: it creates the file it names."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path(self.marker).touch, ())


def _hostile_cache_files(path, logits, marker):
    """What a teacher-cache file may hold on disk after a crash, a full disk or a hand edit."""
    key = torch.load(path, weights_only=True)["key"]
    nan = [x.clone() for x in logits]
    nan[0][0, 0] = float("nan")
    return {"random-bytes": os.urandom(4096), "truncated": path.read_bytes()[:1000], "empty": b"",
            "runs-code": {"key": key, "logits": _RunsCode(marker)}, "other-key": {"key": "0" * 20, "logits": logits},
            "one-short": {"key": key, "logits": logits[:-1]}, "nan": {"key": key, "logits": nan},
            "wrong-length": {"key": key, "logits": [x[:, :-1] for x in logits]}}


@pytest.mark.parametrize("case", ["random-bytes", "truncated", "empty", "runs-code", "other-key", "one-short",
                                  "nan", "wrong-length"])
def test_a_hostile_teacher_cache_file_is_computed_again_never_trusted(data, tmp_path, case):
    """Cache files are inputs: one that is unreadable, runs code, belongs to another teacher, or
    holds the wrong number, shape or values of logits is recomputed; the student comes out as from a
    clean cache, and no code in the file runs."""
    cache, marker = tmp_path / "cache", tmp_path / "code-ran"
    ref = distill_task(_cfg(data, tmp_path / "ref", max_steps=2, teacher_cache=str(cache)))
    path = next(cache.glob("logits-*.pt"))
    clean = torch.load(path, weights_only=True)["logits"]
    content = _hostile_cache_files(path, clean, marker)[case]
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    distill_task(_cfg(data, tmp_path / "again", max_steps=2, teacher_cache=str(cache)))
    assert not marker.exists()
    again = torch.load(path, weights_only=True)["logits"]
    assert len(again) == len(clean) and all(torch.equal(a, b) for a, b in zip(again, clean))
    _assert_same(_weights(tmp_path / "ref" / "student"), _weights(tmp_path / "again" / "student"))
    assert ref["train_seconds"] >= 0


@pytest.mark.parametrize("scores", ['{"key": "x", "scores": {"f1": 1}}', '{"scores": {"f1": "high"}}', "[]",
                                    "not json", '{"key": "KEY", "scores": {"f1": 1e9, "n": 1}}'])
def test_a_hostile_teacher_scores_cache_is_scored_again(data, tmp_path, scores):
    cache = tmp_path / "cache"
    m = distill_task(_cfg(data, tmp_path / "one", max_steps=1, teacher_cache=str(cache), eval_file=str(data["dev"])))
    path = next(cache.glob("scores-*.json"))
    path.write_text(scores.replace("KEY", json.loads(path.read_text())["key"]))
    again = distill_task(_cfg(data, tmp_path / "two", max_steps=1, teacher_cache=str(cache),
                              eval_file=str(data["dev"])))
    assert again["teacher"] == m["teacher"]


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path):
    from distill.checkpoint import load_checkpoint

    marker = tmp_path / "code-ran"
    path = tmp_path / "ckpt-0000002.pt"
    torch.save({"student": _RunsCode(marker), "step": 2}, path)
    with pytest.raises(UsageError, match="holds more than tensors and plain data") as e:
        load_checkpoint(path)
    assert "\n" not in str(e.value) and not marker.exists()


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pocketbert.cli", "distill", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("case", ["not-json", "no-data", "missing", "map-syntax", "map-range", "map-count",
                                  "map-without-matching"])
def test_bad_transfer_file_or_layer_map_is_one_line(data, tmp_path, case):
    bad = tmp_path / "bad.json"
    bad.write_text({"not-json": "{oops", "no-data": '{"version": "1.1"}'}.get(case, "{}"))
    args = ["--task", "question-answering", "--teacher", "bert-tiny", "--train-file", str(data["train"]),
            "--out", str(tmp_path / "o"), "--max-len", "48", "--doc-stride", "16", "--max-steps", "1",
            "--no-progress"]
    extra = {"not-json": ["--transfer-file", str(bad)], "no-data": ["--transfer-file", str(bad)],
             "missing": ["--transfer-file", str(tmp_path / "nope.json")],
             "map-syntax": ["--alpha-hidden", "1", "--layer-map", "two"],
             "map-range": ["--alpha-hidden", "1", "--student-layers", "0", "--layer-map", "3"],
             "map-count": ["--alpha-hidden", "1", "--student-layers", "0", "--layer-map", "1,2"],
             "map-without-matching": ["--layer-map", "2"]}[case]
    proc = _cli(*args, *extra, cwd=tmp_path)
    # our lines (library warnings on import are the console test's business, tests/test_hardening.py)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("pocketbert")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    want = {"not-json": "--transfer-file", "no-data": "--transfer-file", "missing": "nope.json",
            "map-syntax": "--layer-map", "map-range": "--layer-map", "map-count": "--layer-map",
            "map-without-matching": "--alpha-hidden"}[case]
    assert want in lines[0], lines
    assert not (tmp_path / "o").exists()  # nothing half-written

"""Issue 13: no input destroys data, trains garbage or ends in a traceback.

1. The argument walker: every flag of every subcommand (read from the argparse definitions, so a
   flag added tomorrow is covered) must have a `pocketbert.argtypes` validator, and gets the
   invalid values its validator's kind implies; each must exit 2 with ONE stderr line naming the
   flag and create nothing.
2. Malformed data files for every workload and reader, malformed manifests and records (a fuzz
   over mutations of valid objects).
3. The issue's reproductions (#1, #3, #4, #5, #6, #7 without the distill-loop parts).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest

from pocketbert import argtypes
from pocketbert.cli import build_parser, main
from pocketbert.common import UsageError

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1-first12.json"


# ------------------------------------------------------------------ the argument walker

walk_parsers = argtypes.walk_parsers  # (subcommand path, parser) for every (nested) subcommand


def value_flags(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The arguments that take a value (switches like --overwrite have nothing to validate)."""
    return [a for a in parser._actions if a.nargs != 0 and not isinstance(a, argparse._SubParsersAction)]


def flag_name(action: argparse.Action) -> str:
    """How argparse names the argument in its messages (and how the walker passes it)."""
    return "/".join(action.option_strings) if action.option_strings else (action.metavar or action.dest)


def unvalidated_flags(parser: argparse.ArgumentParser) -> list[str]:
    return [f"{' '.join(path)} {flag_name(a)}" for path, sub in walk_parsers(parser)
            for a in value_flags(sub) if argtypes.validator_kind(a) is None]


def _int_values(facts):
    lo, hi = facts["lo"], facts["hi"]
    out = ["abc", "1.5", ""]
    if lo is not None:
        out += [str(lo - 1), str(min(lo - 1, -1))]
    if hi is not None:
        out.append(str(hi + 1))
    return out


def _float_values(facts):
    lo, hi = facts["lo"], facts["hi"]
    out = ["abc", "nan", "inf", "-inf"]
    if lo is not None:
        out.append(repr(lo) if facts["lo_open"] else repr(lo - 1))
    if hi is not None:
        out.append(repr(hi) if facts["hi_open"] else repr(hi + 0.5))
    return out


# kind -> invalid values ({placeholders} are made by the `playground` fixture)
INVALID = {
    "int": _int_values,
    "float": _float_values,
    "choice": lambda f: ["no-such-choice"],
    "name": lambda f: ["../escaped", "/abs/olute", "a/b", "..", ""],
    "text": lambda f: ["", "   "],
    "existing_file": lambda f: ["{missing}", "{folder}"],
    "text_file": lambda f: ["{missing}", "{folder}", "{binary}", "{empty}"],
    "existing_dir": lambda f: ["{missing}", "{file}"],
    "existing_path": lambda f: ["{missing}"],
    "output_dir": lambda f: ["{file}", "{under_file}", "{unwritable}", ".", ".."],
    "output_root": lambda f: ["{file}", "{under_file}", "{unwritable}"],
    "model": lambda f: ["", "./no-such-folder", "{file}"],
    "tokenizer": lambda f: ["{missing}", "{binary}", "{empty}"],
    "spec": lambda f: ["no-such-kind:x", "squad:{missing}", "squad:{binary}", "squad:{empty}",
                       "squad:{json_list}"],
}


def walker_cases() -> list[tuple[str, str, str]]:
    """(subcommand, flag, invalid value) for every value flag of every subcommand."""
    cases = []
    for path, sub in walk_parsers(build_parser()):
        for action in value_flags(sub):
            kind = argtypes.validator_kind(action)
            if kind is None:
                continue  # test_every_flag_has_a_validator lists it
            facts = getattr(action.type, "facts", {})
            for value in INVALID[kind](facts):
                cases.append((" ".join(path), flag_name(action), value))
    return cases


CASES = walker_cases()


def test_every_flag_has_a_validator():
    missing = unvalidated_flags(build_parser())
    assert not missing, f"flags without a pocketbert.argtypes validator: {', '.join(missing)}"
    kinds = {argtypes.validator_kind(a) for _, sub in walk_parsers(build_parser()) for a in value_flags(sub)}
    assert kinds <= set(INVALID), f"validator kinds without invalid values here: {kinds - set(INVALID)}"


def test_the_walker_notices_a_flag_without_validator():
    parser = build_parser()
    sub = dict(walk_parsers(parser))[("bench",)]
    sub.add_argument("--new-flag", type=int)
    assert unvalidated_flags(parser) == ["bench --new-flag"]


def test_walker_covers_every_subcommand():
    subs = {c[0] for c in CASES}
    assert {"export", "bench", "report", "distill pretrain", "distill task"} <= subs
    assert len(CASES) >= 250, len(CASES)


def _tree(*roots: Path) -> set[str]:
    out = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            out.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return out


@pytest.fixture(scope="module")
def playground(tmp_path_factory):
    """Files the placeholders name: a folder, a text file, a binary and an empty file..."""
    root = tmp_path_factory.mktemp("walker")
    (root / "folder").mkdir()
    (root / "file.txt").write_text("some text\n")
    (root / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (root / "empty.txt").write_bytes(b"")
    (root / "list.json").write_text("[1, 2]")
    unwritable = Path("/sys/pocketbert-test-out")  # root passes os.access: a read-only mount
    if os.geteuid() != 0:
        locked = root / "locked"
        locked.mkdir(mode=0o500)
        unwritable = locked / "out"
    elif argtypes.writable_dir(Path("/sys")):
        unwritable = None
    work = root / "cwd"
    work.mkdir()
    squad = root / "squad.json"  # valid, tiny: what the scope walker gives flags that take data
    squad.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "The cat sat on the mat.", "qas": [
        {"id": "q1", "question": "Who sat?", "answers": [{"text": "The cat", "answer_start": 0}]}]}]}]}))
    stsb = root / "stsb.tsv"
    stsb.write_text("index\tsentence1\tsentence2\tscore\n0\tA cat sits.\tA cat is sitting.\t4.5\n")
    return {"root": root, "cwd": work, "missing": str(root / "no-such-thing"),
            "folder": str(root / "folder"), "file": str(root / "file.txt"),
            "binary": str(root / "binary.bin"), "empty": str(root / "empty.txt"),
            "json_list": str(root / "list.json"), "under_file": str(root / "file.txt" / "out"),
            "unwritable": str(unwritable) if unwritable else None, "squad": f"squad:{squad}",
            "squad_file": str(squad), "stsb_file": str(stsb), "new_out": str(root / "new-out")}


def _run_cli(argv, capsys) -> tuple[int, list[str]]:
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("sub, flag, value", CASES, ids=[f"{s} {f}={v}" for s, f, v in CASES])
def test_invalid_flag_value_is_one_line_exit_2(sub, flag, value, playground, capsys, monkeypatch):
    if "{unwritable}" in value and playground["unwritable"] is None:
        pytest.skip("no unwritable folder on this machine")
    value = value.format(**{k: v for k, v in playground.items() if isinstance(v, str)})
    monkeypatch.chdir(playground["cwd"])
    before = _tree(playground["root"])
    arg = [f"{flag.split('/')[-1]}={value}"] if flag.startswith("-") else [value]
    rc, err = _run_cli([*sub.split(), *arg], capsys)
    assert rc == 2, err
    assert len(err) == 1, err
    assert err[0].startswith(f"pocketbert {sub}: error: argument {flag}:"), err[0]
    assert _tree(playground["root"]) == before  # created nothing



# ------------------------------------------------------------------ switches and mode scopes

def switches(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The flags that take no value (--overwrite, --paper, ...); --help and --version aside."""
    return [a for a in parser._actions if a.nargs == 0 and a.option_strings
            and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]


SWITCH_CASES = [(" ".join(path), flag_name(a).split("/")[-1]) for path, sub in walk_parsers(build_parser())
                for a in switches(sub)]


@pytest.mark.parametrize("sub, flag", SWITCH_CASES, ids=[f"{s} {f}" for s, f in SWITCH_CASES])
def test_a_switch_given_a_value_is_one_line_exit_2(sub, flag, playground, capsys, monkeypatch):
    monkeypatch.chdir(playground["cwd"])
    before = _tree(playground["root"])
    rc, err = _run_cli([*sub.split(), f"{flag}=yes"], capsys)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"pocketbert {sub}: error: argument {flag}:"), err[0]
    assert _tree(playground["root"]) == before


# what the walker gives a subcommand's required flags, by validator kind (a new kind fails loudly here)
REQUIRED_VALUES = {"model": "bert-tiny", "output_dir": "{new_out}"}


def _required(sub: argparse.ArgumentParser) -> list[str]:
    out = []
    for a in sub._actions:
        if a.required and a.option_strings:
            kind = argtypes.validator_kind(a)
            assert kind in REQUIRED_VALUES, f"required {flag_name(a)} of kind {kind}: add a value to REQUIRED_VALUES"
            out += [a.option_strings[-1], REQUIRED_VALUES[kind]]
    return out


SCOPE_CASES = [(" ".join(path), a.option_strings[-1]) for path, sub in walk_parsers(build_parser())
               for a in argtypes.scoped_flags(sub)]


def _scope_argv(sub: str, flag: str, where: str, playground) -> list[str]:
    parser = dict(walk_parsers(build_parser()))[tuple(sub.split())]
    scope = parser._option_string_actions[flag].scope
    fill = {k: v for k, v in playground.items() if isinstance(v, str)}
    argv = [*sub.split(), *_required(parser), *getattr(scope, where), flag, *scope.example]
    return [x.format(**fill) for x in argv]


def test_the_scope_walker_covers_the_modes_the_issues_named():
    assert {("export", "--coreml-seq-lens"), ("bench", "--workload"), ("bench", "--stsb"),
            ("bench", "--squad"), ("export", "--int8-mode")} <= set(SCOPE_CASES)


@pytest.mark.parametrize("sub, flag", SCOPE_CASES, ids=[f"{s} {f}" for s, f in SCOPE_CASES])
def test_a_flag_its_mode_would_ignore_is_one_line_exit_2(sub, flag, playground, capsys, monkeypatch):
    """Every scoped flag (pocketbert.argtypes.only_with), given outside its mode: refused by the parse,
    one line naming it, nothing created. Inside its mode the same value passes the scope check."""
    monkeypatch.chdir(playground["cwd"])
    before = _tree(playground["root"])
    rc, err = _run_cli(_scope_argv(sub, flag, "outside", playground), capsys)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"pocketbert {sub}: error: argument {flag}: applies with "), err[0]
    assert _tree(playground["root"]) == before
    parser = build_parser()
    args = parser.parse_args(_scope_argv(sub, flag, "inside", playground))
    argtypes.check_scopes(parser, args)  # its own mode: no SystemExit


def test_the_scope_check_fires_only_for_flags_set_away_from_their_default(playground, capsys):
    """Giving a default value explicitly changes nothing, so it is not refused (scripts pass defaults)."""
    parser = build_parser()
    args = parser.parse_args(["export", "--model", "bert-tiny", "--out", playground["new_out"], "--target", "onnx",
                              "--calibration-samples", str(parser.parse_args(
                                  ["export", "--model", "x", "--out", "y"]).calibration_samples)])
    argtypes.check_scopes(parser, args)
    with pytest.raises(SystemExit):
        argtypes.check_scopes(parser, parser.parse_args(["export", "--model", "bert-tiny", "--out",
                                                         playground["new_out"], "--calibration-samples", "3"]))


# ------------------------------------------------------------------ malformed data files

SQUAD_BAD = {
    "binary": bytes(range(256)) * 8,
    "empty": b"",
    "not-json": b"{\"data\": [",
    "top-level-list": b"[]",
    "no-questions": b'{"data": []}',
    "data-not-list": b'{"data": {"paragraphs": []}}',
    "article-not-object": b'{"data": [1]}',
    "paragraphs-not-list": b'{"data": [{"paragraphs": "text"}]}',
    "context-not-string": b'{"data": [{"paragraphs": [{"context": 1, "qas": []}]}]}',
    "qas-missing": b'{"data": [{"paragraphs": [{"context": "c"}]}]}',
    "qa-not-object": b'{"data": [{"paragraphs": [{"context": "c", "qas": [1]}]}]}',
    "question-not-string": b'{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": 2}]}]}]}',
    "answers-not-list": b'{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q", "answers": 5}]}]}]}',
    "answer-start-text": b'{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q", "answers": [{"text": "c", "answer_start": "x"}]}]}]}]}',
    "answer-not-object": b'{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q", "answers": ["c"]}]}]}]}',
}

TSV_BAD = {
    "binary": bytes(range(256)) * 8,
    "empty": b"",
    "blank-header": b"\n\n",
    "header-only": b"index\tsentence1\tsentence2\tscore\n",
    "wrong-header": b"a\tb\tc\n1\t2\t3\n",
    "field-count": b"index\tsentence1\tsentence2\tscore\n0\tonly one\n",
    "latin-1": "index\tsentence1\tsentence2\tscore\n0\tcaf\u00e9\tx\t1.0\n".encode("latin-1"),
}

TEXT_BAD = {  # the sentences/tokens workloads' plain text files (one passage per line)
    "binary": bytes(range(256)) * 8,
    "empty": b"",
    "blank-lines": b"\n  \n\t\n",
    "headings-only": b" = Heading = \n = = Sub = = \n",
    "latin-1": "caf\u00e9 au lait\n".encode("latin-1"),
}

BAD_FILES = {"squad": SQUAD_BAD, "stsb": TSV_BAD, "sentences": TEXT_BAD, "tokens": TEXT_BAD}  # every workload that reads a file


def test_every_file_workload_has_malformed_cases():
    from bench.workloads import WORKLOADS

    needs = {name for name, kind in WORKLOADS.items() if kind.needs_path}
    assert needs <= set(BAD_FILES), f"workloads without malformed-file cases: {needs - set(BAD_FILES)}"


DATA_CASES = [(w, name) for w, cases in BAD_FILES.items() for name in cases]


@pytest.fixture(scope="module")
def tokenizer():
    from pocketbert.models import load_tokenizer

    return load_tokenizer(None)


def _one_line_usage_error(fn, *args, **kw) -> str:
    with pytest.raises(UsageError) as e:
        fn(*args, **kw)
    msg = str(e.value)
    assert "\n" not in msg.strip(), msg
    return msg


@pytest.mark.parametrize("workload, case", DATA_CASES, ids=[f"{w}-{c}" for w, c in DATA_CASES])
def test_malformed_data_file_is_one_line(workload, case, tmp_path, tokenizer):
    from bench.workloads import check_workload, load_workload
    from bench.workloads import WORKLOADS

    path = tmp_path / f"{case}.data"
    path.write_bytes(BAD_FILES[workload][case])
    reader = WORKLOADS[workload].read
    assert str(path) in _one_line_usage_error(reader, path)
    _one_line_usage_error(check_workload, f"{workload}:{path}")
    _one_line_usage_error(load_workload, f"{workload}:{path}", tokenizer, 64, 4)


def test_wrong_types_in_valid_tsv(tmp_path):
    from pocketbert import glue

    path = tmp_path / "dev.tsv"
    path.write_text("index\tsentence1\tsentence2\tscore\n0\ta\tb\tnot-a-number\n")
    assert "is not a finite number" in _one_line_usage_error(glue.float_labels, glue.read_tsv(path))


@pytest.mark.parametrize("case", sorted(SQUAD_BAD))
def test_malformed_eval_data_is_one_line(case, tmp_path, capsys, monkeypatch):
    path = tmp_path / "bad.json"
    path.write_bytes(SQUAD_BAD[case])
    monkeypatch.chdir(tmp_path)
    rc, err = _run_cli(["export", "--model", "bert-tiny", "--eval-data", f"squad:{path}", "--out", "o"], capsys)
    assert rc == 2 and len(err) == 1 and "argument --eval-data:" in err[0], err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", bytes(range(256)) * 4])
def test_distill_data_empty_or_binary_is_one_line(content, tmp_path, capsys):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    rc, err = _run_cli(["distill", "--teacher", "bert-tiny", "--data", str(path), "--out",
                        str(tmp_path / "o")], capsys)
    assert rc == 2 and len(err) == 1 and "argument --data:" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt"]


# ------------------------------------------------------------------ manifests and records

def _valid_manifest() -> dict:
    from pocketbert.contracts import Manifest

    return Manifest(target="onnx", precision="fp32", task="question-answering", model_type="bert",
                    source="preset:bert-tiny", model_file="model.onnx", seq_len=64, seq_lens=[64],
                    dynamic_seq=True, inputs=[{"name": "input_ids", "dtype": "int64", "shape": [1, "seq"]}],
                    outputs=[{"name": "start_logits", "dtype": "float32", "shape": [1, "seq"]}],
                    files={"model.onnx": {"bytes": 5, "sha256": "0" * 64}}).to_dict()


def _valid_record() -> dict:
    from pocketbert.contracts import Record

    return Record(run_id="r", model="bert-tiny", runtime="onnx", precision="fp32", workload="synthetic",
                  shape="dynamic", latency_ms=[1.0, 2.0], tokenize_ms=[0.1, 0.1],
                  postprocess_ms=[0.2, 0.2], item_ids=["a", "b"], machine={"cpu_model": "x"}).to_dict()


def _wrong_value(hint):
    """A JSON value whose type the annotation does not allow."""
    args = typing.get_args(hint) or (hint,)
    bases = {typing.get_origin(a) or a for a in args}
    for candidate in ("a-string", 12345, 1.5, [1, 2], {"k": "v"}, True):
        t = type(candidate)
        ok = t in bases or (t is int and float in bases) or typing.Any in bases
        if not ok:
            return candidate
    return None


def _mutations(cls, valid: dict) -> list[tuple[str, dict]]:
    hints = typing.get_type_hints(cls)
    out = []
    for name, f in cls.model_fields.items():  # pydantic models (pocketbert.contracts)
        key = f.alias or name
        if key == cls.SCHEMA_KEY:
            continue  # its own cases below
        if f.is_required():
            out.append((f"drop-{key}", {k: v for k, v in valid.items() if k != key}))
        wrong = _wrong_value(hints[name])
        if wrong is not None:
            out.append((f"type-{key}", {**valid, key: wrong}))
    schema_key = cls.SCHEMA_KEY
    for name, value in (("schema-old", cls.SCHEMA[:-1] + "0"), ("schema-none", None), ("schema-int", 1)):
        out.append((name, {**valid, schema_key: value}))
    out.append(("not-an-object", [valid]))
    return out


def _contract_cases():
    from pocketbert.contracts import Manifest, Record

    return ([("manifest", n, d) for n, d in _mutations(Manifest, _valid_manifest())]
            + [("record", n, d) for n, d in _mutations(Record, _valid_record())])


CONTRACT_CASES = _contract_cases()


def test_valid_objects_read_back():
    from pocketbert.contracts import Manifest, Record

    Manifest.from_dict(_valid_manifest())
    Record.from_dict(_valid_record())
    assert len(CONTRACT_CASES) >= 60, len(CONTRACT_CASES)


@pytest.mark.parametrize("what, case, data", CONTRACT_CASES, ids=[f"{w}-{c}" for w, c, _ in CONTRACT_CASES])
def test_malformed_contract_is_one_line(what, case, data, tmp_path):
    from bench.records import load_records
    from export.bundle import read_manifest
    from pocketbert.contracts import Manifest, Record

    cls = Manifest if what == "manifest" else Record
    msg = _one_line_usage_error(cls.from_dict, data, "x.json")
    if case == "schema-old":
        assert cls.SCHEMA in msg and cls.SCHEMA[:-1] + "0" in msg, msg
    field = case.partition("-")[2]
    if case.startswith(("drop-", "type-")):
        assert field in msg, msg
    if what == "manifest":
        (tmp_path / "model.onnx").write_bytes(b"12345")
        (tmp_path / "manifest.json").write_text(json.dumps(data))
        _one_line_usage_error(read_manifest, tmp_path)
    elif isinstance(data, dict) and str(data.get("schema", "")).startswith("pocketbert-bench/"):
        (tmp_path / "rec.json").write_text(json.dumps(data))
        assert "rec.json" in _one_line_usage_error(load_records, [tmp_path])


@pytest.mark.parametrize("content", [b"", bytes(range(256)) * 4, b"{\"format\": ", b"[]"])
def test_unreadable_manifest_and_record_files(content, tmp_path):
    from bench.records import load_records
    from export.bundle import read_manifest

    (tmp_path / "manifest.json").write_bytes(content)
    _one_line_usage_error(read_manifest, tmp_path)
    if content != b"[]":  # a JSON list is not a record: skipped, then "no records"
        (tmp_path / "rec.json").write_bytes(content)
    _one_line_usage_error(load_records, [tmp_path])


# ------------------------------------------------------------------ issue 31: every reader is bounded

def _all_contracts():
    from pocketbert.contracts import Contract

    out, todo = [], list(Contract.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if getattr(cls, "SCHEMA", None):
            out.append(cls)
    return sorted(out, key=lambda c: c.__name__)


BAD_FILE_KINDS = ("folder", "fifo", "huge", "deep", "missing")


def _bad_file(path: Path, kind: str) -> None:
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # a reader that opens it blocks forever
    elif kind == "huge":
        with open(path, "wb") as f:
            f.truncate(1 << 30)  # sparse: a reader without a bound would take 1 GB of memory
    elif kind == "deep":
        path.write_text("[" * 200000 + "]" * 200000)


@pytest.mark.parametrize("kind", BAD_FILE_KINDS)
@pytest.mark.parametrize("cls", _all_contracts(), ids=lambda c: c.__name__)
def test_every_contract_reader_checks_the_file_before_opening_it(cls, kind, tmp_path):
    """The class of issue 31's reader probes: each typed file (manifest, record, worker spec and
    result, ...) read through its contract is refused in one line naming it when it is a folder, a
    pipe, larger than any such file can be, nested without end or missing; never a block, a memory
    blow-up or 'internal error'."""
    path = tmp_path / "x.json"
    _bad_file(path, kind)
    assert "x.json" in _one_line_usage_error(cls.read, path)


@pytest.mark.parametrize("kind", BAD_FILE_KINDS[:4])
@pytest.mark.parametrize("reader", ["report", "read_manifest", "bench --bundle", "distill --resume",
                                    "android bundle"])
def test_every_command_that_reads_a_json_file_refuses_a_bad_one_in_one_line(reader, kind, tmp_path, capsys,
                                                                             monkeypatch):
    """The same class through the commands (the files each reads that a user can hand it)."""
    folder = tmp_path / "in"
    folder.mkdir()
    if reader == "report":
        path, argv = folder / "rec.json", ["report", str(folder), "--out", str(tmp_path / "rep")]
    elif reader == "distill --resume":
        path, argv = folder / "config.json", ["distill", "--out", str(folder), "--resume", "--no-progress"]
    elif reader == "android bundle":
        app = tmp_path / "app"
        (app / "app").mkdir(parents=True)
        (app / "settings.gradle.kts").write_text("")
        path, argv = folder / "manifest.json", ["android", "bundle", str(folder), "--app", str(app)]
    else:
        path, argv = folder / "manifest.json", (["bench", "--bundle", str(folder), "--out", str(tmp_path / "r"),
                                                 "--quiet"] if reader.startswith("bench") else None)
    _bad_file(path, kind)
    if argv is None:
        from export.bundle import read_manifest

        assert "manifest.json" in _one_line_usage_error(read_manifest, folder)
        return
    if kind == "folder" and reader == "report":
        return  # a folder named rec.json is not a record: skipped (test_all_or_nothing)
    rc, err = _run_cli(argv, capsys)
    assert rc == 2 and len(err) == 1 and path.name in err[0] and "internal error" not in err[0], err


# ------------------------------------------------------------------ reproduction #1: --out . --overwrite

def test_repro1_overwrite_never_replaces_the_working_directory(tmp_path, capsys, monkeypatch):
    work = tmp_path / "s"
    work.mkdir()
    (work / "keep.txt").write_text("x\n")
    monkeypatch.chdir(work)
    for out in (".", "..", str(work)):
        rc, err = _run_cli(["export", "--model", "bert-tiny", "--target", "onnx", "--precision", "fp32",
                            "--seq-len", "64", "--out", out, "--overwrite"], capsys)
        assert rc == 2 and len(err) == 1 and "working directory" in err[0], err
    assert sorted(p.name for p in work.iterdir()) == ["keep.txt"]
    assert (work / "keep.txt").read_text() == "x\n"


def test_repro1_overwrite_replaces_only_a_folder_pocketbert_wrote(tmp_path, capsys):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work\n")
    rc, err = _run_cli(["export", "--model", "bert-tiny", "--target", "onnx", "--out", str(theirs),
                        "--overwrite"], capsys)
    assert rc == 2 and len(err) == 1 and ".pocketbert marker" in err[0], err
    assert [p.name for p in theirs.iterdir()] == ["thesis.tex"]


def test_atomic_swap_keeps_the_old_folder_until_the_new_one_is_complete(tmp_path):
    from pocketbert.outputs import MARKER, atomic_output_dir

    out = tmp_path / "out"
    with atomic_output_dir(out) as tmp:
        (tmp / "v").write_text("1")
    assert (out / MARKER).is_file() and (out / "v").read_text() == "1"
    with pytest.raises(RuntimeError), atomic_output_dir(out, overwrite=True) as tmp:
        (tmp / "v").write_text("2")
        raise RuntimeError("export failed half-way")
    assert (out / "v").read_text() == "1"  # the old result survives a failed replacement
    with atomic_output_dir(out, overwrite=True) as tmp:
        (tmp / "v").write_text("3")
    assert (out / "v").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no .tmp-/.old- siblings


# ------------------------------------------------------------------ reproduction #3: weights of another model

def test_repro3_weights_of_another_model_are_refused_before_export(tmp_path, capsys):
    import shutil

    from pocketbert.models import build_preset, load_tokenizer

    tok = load_tokenizer(None)
    for name in ("bert-tiny", "distilbert-tiny"):
        build_preset(name, "question-answering").save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    shutil.copy(tmp_path / "distilbert-tiny" / "model.safetensors", tmp_path / "bert-tiny" / "model.safetensors")
    rc, err = _run_cli(["export", "--model", str(tmp_path / "bert-tiny"), "--target", "onnx", "--seq-len", "16",
                        "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and len(err) == 1 and "do not match its config" in err[0], err
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".tmp-*"))


def test_repro3_a_folder_without_the_task_head_is_refused(tmp_path):
    from pocketbert.models import build_preset, load_model, load_tokenizer

    build_preset("bert-tiny", "fill-mask").save_pretrained(tmp_path)
    load_tokenizer(None).save_pretrained(tmp_path)
    load_model(str(tmp_path), "fill-mask")  # its own head: fine
    assert "qa_outputs" in _one_line_usage_error(load_model, str(tmp_path), "question-answering")


# ------------------------------------------------------------------ reproduction #4: --run-id escapes --out

@pytest.mark.parametrize("run_id", ["../escaped", "/tmp/abs-escaped", "a/../../b"])
def test_repro4_run_id_stays_inside_out(run_id, tmp_path, capsys):
    out = tmp_path / "results"
    rc, err = _run_cli(["bench", "--model", "bert-tiny", "--runtime", "pytorch", "--out", str(out),
                        "--run-id", run_id], capsys)
    assert rc == 2 and len(err) == 1 and "argument --run-id:" in err[0], err
    assert not any(tmp_path.iterdir())
    from bench.harness import BenchConfig, run_bench

    with pytest.raises(UsageError, match="plain folder name"):  # the API checks too
        run_bench(BenchConfig(models=["bert-tiny"], runtimes=["pytorch"], out=out, run_id=run_id))
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------ reproduction #5: SQuAD at short seq lens

@pytest.mark.skipif(not SQUAD.is_file(), reason="shared SQuAD data not present")
@pytest.mark.parametrize("seq_len", [16, 32, 64])
def test_repro5_squad_windows_fit_short_seq_lens(seq_len, tokenizer):
    from bench.workloads import load_workload

    wl = load_workload(f"squad:{SQUAD}", tokenizer, seq_len, limit=50)
    lengths = [len(f["input_ids"]) for item in wl.items for f in item.features]
    assert len(wl.items) == 50 and max(lengths) <= seq_len


def test_repro5_over_long_question_is_cut_not_a_panic(tokenizer):
    from pocketbert import squad

    q = squad.Question("q", "what is the answer to this very long question " * 20, "the answer is here. " * 40)
    for seq_len in (8, 16, 64, 384):
        wins = squad.question_windows(tokenizer, q, seq_len)
        assert wins and all(len(w.inputs["input_ids"]) <= seq_len for w in wins)
        assert all(any(w.context_mask) for w in wins)  # every window has context to answer from
    assert "too short" in _one_line_usage_error(squad.question_windows, tokenizer, q, 4)


@pytest.mark.slow  # two worker processes: the windowing tests above are the fast form of #5
@pytest.mark.skipif(not SQUAD.is_file(), reason="shared SQuAD data not present")
def test_repro5_bench_squad_seq64_runs(tmp_path, capsys):
    out = tmp_path / "res"
    rc = main(["bench", "--model", "bert-tiny", "--runtime", "pytorch", "--precision", "fp32", "--shape",
               "dynamic", "--seq-len", "64", "--limit", "3", "--warmup", "0", "--workload", f"squad:{SQUAD}",
               "--out", str(out), "--run-id", "r", "--quiet", "--no-report"])
    assert rc == 0, capsys.readouterr().err
    rec = json.loads(next((out / "r").glob("*.json")).read_text())
    assert rec["status"] == "ok" and rec["n_items"] == 3


# ------------------------------------------------------------------ reproduction #6: signals

def _env(tmp_path: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}


def _wait_for(pred, timeout_s: float = 240.0, proc=None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        found = pred()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early: rc {proc.returncode}, {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_repro6_sigterm_during_export_exits_143_one_line_nothing_partial(tmp_path):
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "pocketbert.cli", "export", "--model", "bert-tiny",
                             "--target", "onnx", "--seq-len", "16", "--out", str(out)], cwd=tmp_path,
                            env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: list(tmp_path.glob(".tmp-o-*")), proc=proc)  # the export is under way
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    lines = err.strip().splitlines()  # a signal inside the export step is held until it returns, and says so
    assert lines[-1] == "pocketbert export: terminated (SIGTERM); nothing partial was left behind", err
    assert len(lines) <= 2 and all(x.startswith("pocketbert: stopping after the ONNX") for x in lines[:-1]), err
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_repro6_leftovers_of_a_killed_run_are_cleaned_and_named(tmp_path):
    from pocketbert.common import clean_leftovers
    from pocketbert.outputs import atomic_output_dir

    code = ("import os, signal; from pocketbert.outputs import atomic_output_dir\n"
            "with atomic_output_dir(__import__('pathlib').Path('o')) as tmp:\n"
            "    (tmp / 'model.onnx').write_text('complete-looking')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(tmp_path), timeout=120)
    (left,) = tmp_path.glob(".tmp-o-*")
    staging = tmp_path / "cache"
    (staging / ".export-999999999-onnx-fp32").mkdir(parents=True)  # a pid that cannot be alive
    (tmp_path / "pocketbert-worker-999999999-abcd1234").mkdir()
    (tmp_path / f"pocketbert-worker-{os.getppid()}-live1234").mkdir()  # a live owner: kept
    (tmp_path / ".tmp-o-999999999-abcd1234-x").mkdir()  # not ours (another output's name)
    log: list[str] = []
    with atomic_output_dir(tmp_path / "o", log=log.append) as tmp:
        (tmp / "model.onnx").write_text("new")
    assert not left.exists() and str(left) in log[0]
    assert clean_leftovers(staging, ".export-", log.append) == [staging / ".export-999999999-onnx-fp32"]
    assert clean_leftovers(tmp_path, "pocketbert-worker-", log.append, temp_suffix=True) == [
        tmp_path / "pocketbert-worker-999999999-abcd1234"]
    assert (tmp_path / f"pocketbert-worker-{os.getppid()}-live1234").exists()
    assert (tmp_path / ".tmp-o-999999999-abcd1234-x").exists()
    assert len(log) == 3 and all("left behind by an interrupted run" in line for line in log)


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux")
def test_repro6_sigkilled_bench_takes_its_worker_with_it(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "pocketbert.cli", "bench", "--model", "bert-tiny",
                             "--runtime", "pytorch", "--precision", "fp32", "--shape", "dynamic",
                             "--seq-len", "16", "--limit", "1", "--quiet", "--out", str(tmp_path / "r")],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    def worker_running():
        return [pid for pid in _children(proc.pid) if "bench.worker" in _cmdline(pid)]

    try:
        (worker,) = _wait_for(worker_running, proc=proc)
        assert list(tmp_path.glob(f"pocketbert-worker-{proc.pid}-*"))
        proc.kill()
        proc.wait(timeout=30)
        _wait_for(lambda: _dead(worker), timeout_s=30)
    finally:
        proc.kill()
    left = list(tmp_path.glob(f"pocketbert-worker-{proc.pid}-*"))  # what the killed run left
    from pocketbert.common import clean_leftovers

    assert left and clean_leftovers(tmp_path, "pocketbert-worker-", lambda m: None, temp_suffix=True) == left


def test_repro6_an_interrupt_wrapped_by_a_library_is_one_line(monkeypatch, capsys, tmp_path):
    import export.cli

    def lowering(args):  # what torch.export/XNNPACK lowering does: catches and re-raises wrapped
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt as e:
            raise RuntimeError("lowering failed:\n" + "\n".join(["  frame"] * 260)) from e

    monkeypatch.setattr(export.cli, "run", lowering)
    rc, err = _run_cli(["export", "--model", "bert-tiny", "--out", str(tmp_path / "o")], capsys)
    assert rc == 130 and err == ["pocketbert export: interrupted; nothing partial was left behind"], err
    from pocketbert.common import received_signal

    assert received_signal() is None  # handled: the next command in this process is not stopped by it


# ------------------------------------------------------------------ reproduction #7 (non-distill parts)

@pytest.mark.parametrize("sub", ["bench", "report", "distill"])
def test_repro7_file_or_unwritable_out_is_one_line(sub, tmp_path, capsys, playground):
    f = tmp_path / "a-file"
    f.write_text("x")
    extra = {"bench": [], "report": [str(tmp_path)], "distill": ["--teacher", "bert-tiny"]}[sub]
    for out in filter(None, [str(f), playground["unwritable"]]):
        rc, err = _run_cli([sub, *extra, "--out", out], capsys)
        assert rc == 2 and len(err) == 1 and "argument --out:" in err[0], err


@pytest.mark.parametrize("content", [b"", bytes(range(256)) * 64])
def test_repro7_binary_or_empty_tokenizer_is_one_line(content, tmp_path, capsys):
    tok = tmp_path / "vocab.txt"
    tok.write_bytes(content)
    for sub in (["export", "--model", "bert-tiny", "--out", str(tmp_path / "o")], ["bench"],
                ["distill", "--teacher", "bert-tiny"]):
        rc, err = _run_cli([*sub, "--tokenizer", str(tok)], capsys)
        assert rc == 2 and len(err) == 1 and "argument --tokenizer:" in err[0], err


def test_repro7_unknown_model_with_unreachable_hub_fails_at_once_in_one_line(tmp_path):
    env = {k: v for k, v in _env(tmp_path).items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens: what no internet looks like, at once
    r = subprocess.run([sys.executable, "-m", "pocketbert.cli", "export", "--model", "no-org/no-such-model",
                        "--target", "onnx", "--out", str(tmp_path / "o")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1, err  # no hub-retry lines
    assert "offline?" in err[0] and "unreachable" in err[0] and "preset" in err[0]
    assert not (tmp_path / "o").exists()


def test_repro6_a_signal_inside_a_deferred_step_waits_for_it_and_a_second_one_stops_at_once(tmp_path):
    code = ("import os, signal, sys\n"
            "from pocketbert.common import Interrupted, install_signal_handlers, signals_deferred\n"
            "install_signal_handlers()\n"
            "try:\n"
            "    with signals_deferred('the step'):\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "        print('step finished', flush=True)\n"
            "        if sys.argv[1] == 'twice':\n"
            "            os.kill(os.getpid(), signal.SIGTERM)\n"
            "            print('not reached', flush=True)\n"
            "    print('not reached either')\n"
            "except Interrupted as e:\n"
            "    print('interrupted', e.signum, flush=True)\n")
    once = subprocess.run([sys.executable, "-c", code, "once"], env=_env(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert once.returncode == 0 and once.stdout.split("\n")[:2] == ["step finished", "interrupted 15"], once
    assert "stopping after the step" in once.stderr
    twice = subprocess.run([sys.executable, "-c", code, "twice"], env=_env(tmp_path), capture_output=True,
                           text=True, timeout=60)
    assert twice.returncode == -signal.SIGTERM and "not reached" not in twice.stdout, twice


def test_a_second_signal_in_a_deferred_step_removes_the_half_written_output_and_says_so(tmp_path):
    # Issue 20: a second Ctrl-C during ExecuTorch lowering stops at once; it used to leave .tmp-* beside
    # --out and print no final line.
    code = ("import os, signal, sys\n"
            "from pocketbert.outputs import atomic_output_dir; from pocketbert.common import install_signal_handlers, signals_deferred\n"
            "install_signal_handlers()\n"
            "with atomic_output_dir(sys.argv[1]) as tmp:\n"
            "    (tmp / 'model.pte').write_text('half')\n"
            "    with signals_deferred('lowering to XNNPACK'):\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"
            "        print('not reached', flush=True)\n")
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([sys.executable, "-c", code, str(work / "out")], env=_env(tmp_path), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == -signal.SIGINT and "not reached" not in r.stdout, r
    assert r.stderr.strip().splitlines()[-1] == ("pocketbert: stopped at once during lowering to XNNPACK; "
                                                 "nothing partial was left behind"), r.stderr
    assert list(work.iterdir()) == []  # no .tmp-out-*, no lock file

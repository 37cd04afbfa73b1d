"""The Android demo's golden vectors (android_demo/qa-core/src/test/resources/golden.json) and its
generated Unicode tables (BertUnicode.kt) must be what scripts/make_android_golden.py makes today
from Hugging Face's tokenizer and pocketbert's SQuAD code: a stale file fails here, naming where.
Regenerate with `python scripts/make_android_golden.py`. The `real` section (bert-base-uncased
vocab, minilm-l6-squad12 logits) needs ../shared and is skipped without it."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_script():
    spec = importlib.util.spec_from_file_location("make_android_golden", ROOT / "scripts/make_android_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gold = _load_script()


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads(gold.GOLDEN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def fresh_preset() -> dict:
    return gold.preset_section()


@pytest.fixture(scope="module")
def fresh_unicode() -> dict:
    from pocketbert.models import load_tokenizer

    return gold.unicode_section(load_tokenizer(None))


def _assert_same(committed_part, fresh_part, where: str):
    diffs = gold.differences(committed_part, fresh_part, where)
    assert not diffs, ("golden.json is stale; run `python scripts/make_android_golden.py` and commit:\n  "
                       + "\n  ".join(diffs))


def test_file_is_small_and_well_formed(committed):
    assert gold.GOLDEN.stat().st_size < 1.5e6
    assert committed["format"] == gold.FORMAT
    assert committed["n_best"] == 20 and committed["max_answer_tokens"] == 30
    # the cases the issue asks for are in it
    texts = [c["text"] for c in committed["preset"]["tokenize"]]
    assert "" in texts and any(len(t) > 100 for t in texts) and any("😀" in t for t in texts)
    assert any("error" in c for c in committed["preset"]["windows"])
    assert any(len(c.get("windows", [])) > 3 for c in committed["preset"]["windows"])


def test_preset_section_is_current(committed, fresh_preset):
    _assert_same(committed["preset"], fresh_preset, ".preset")


def test_unicode_section_and_kotlin_tables_are_current(committed, fresh_unicode):
    _assert_same(committed["unicode"], fresh_unicode, ".unicode")
    tables = gold.kotlin_tables_source(gold.bert_unicode_tables(fresh_unicode))
    assert gold.TABLES.read_text(encoding="utf-8") == tables, (
        f"{gold.TABLES.name} is stale: run `python scripts/make_android_golden.py` and commit")


def test_stored_answers_decode_the_same_today(committed):
    """The span search of today's Python code gives every stored answer from the stored logits."""
    assert gold.decode_committed(committed) == []


@pytest.mark.skipif(not gold.has_shared(gold.SHARED), reason="needs ../shared (bert-base-uncased vocab, "
                    "SQuAD dev, minilm-l6-squad12)")
def test_real_section_is_current(committed):
    assert "real" in committed, "golden.json lacks the `real` section: regenerate it with ../shared present"
    # the distilled student's cases (its weights are not in the repo: `--student` adds them) are
    # checked by decoding (test_committed_answers_decode_today), the teacher's against a fresh run
    student = [c for c in committed["real"]["qa"] if str(c.get("model", "")).startswith("student:")]
    assert student and all("token_type_ids" not in c for c in student)
    teacher = dict(committed["real"], qa=[c for c in committed["real"]["qa"] if c not in student])
    _assert_same(teacher, gold.real_section(gold.SHARED), ".real")


def test_a_modified_golden_file_is_caught(committed, fresh_preset):
    """The staleness check can fail: one changed id, one dropped window, one changed answer."""
    bad = copy.deepcopy(committed["preset"])
    bad["tokenize"][3]["ids"][0] += 1
    bad["windows"][-1]["windows"] = bad["windows"][-1].get("windows", [])[:-1] or [{}]
    bad["decode"][-1]["answer"]["end"] -= 1
    diffs = gold.differences(bad, fresh_preset, ".preset")
    assert any(".tokenize[3].ids[0]" in d for d in diffs), diffs
    assert any(".decode[" in d and "answer.end" in d for d in diffs), diffs
    assert len(diffs) >= 3
    tampered = copy.deepcopy(committed)
    tampered["preset"]["decode"][-1]["answer"]["start"] += 1
    assert gold.decode_committed(tampered), "a wrong stored answer must not decode the same"

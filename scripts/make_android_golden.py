"""Golden vectors for the Android demo's plain-Kotlin tokenizer and QA decoding.

The reference is Hugging Face's BertTokenizer (the Rust `tokenizers` backend) and pocketbert's
own SQuAD windowing and span search; the Kotlin JUnit tests (android_demo/qa-core) must reproduce
every number here. Sections:

  preset    the generated preset vocab (pocketbert.models.generated_vocab): tokenization of varied
            text, (question, context) windows over a grid of max_length x stride (and the inputs
            HF refuses), span decoding on seeded float32 logits. Needs nothing but this repo.
  unicode   per code point over all of Unicode: what BertNormalizer makes of it and whether the
            BertPreTokenizer splits on it (punctuation / whitespace), as ranges.
  real      bert-base-uncased's vocab (../shared/data/vocab/vocab.txt): the same text and real
            SQuAD paragraphs; and `minilm-l6-squad12`'s real logits on SQuAD questions (long
            contexts: several windows) with the answers pocketbert decodes from them.
            Generated only when ../shared is there; kept from the committed file otherwise.

Offsets are in UTF-16 code units of the original text (what Kotlin/Android strings index), not
Python's code points. Floats are float32 values written in their shortest round-trip form.

    PYTHONPATH=$PWD .venv/bin/python scripts/make_android_golden.py      # rewrite the golden file
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "android_demo/qa-core/src/test/resources/golden.json"
TABLES = ROOT / "android_demo/qa-core/src/main/kotlin/org/pocketbert/qa/BertUnicode.kt"
SHARED = ROOT.parent / "shared"
REAL_VOCAB = Path("data/vocab/vocab.txt")
REAL_MODEL = Path("models/minilm-l6-squad12")
SQUAD_FILES = (Path("data/squad/dev-v1.1-first12.json"), Path("data/squad/dev-v1.1-articles13-24.json"))
FORMAT = "pocketbert-android-golden/1"

# Text that exercises every branch of BertNormalizer / BertPreTokenizer / WordPiece.
TEXTS = [
    "",
    " ",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "  leading and trailing   spaces \t tabs\nnew lines\r\n",
    "Héllo Wörld, naïve café déjà vu: Ångström, Ærøskøbing, façade, jalapeño.",
    "e\u0301 decomposed accents a\u0308 o\u0302",
    "İstanbul ΣΊΣΥΦΟΣ Straße ǅemal ﬁnal",
    "“Smart quotes” ‘single’ — em dash – en dash … ellipsis «guillemets» ¿qué? ¡sí!",
    "math: 2+2=4, x<y>z, a^b, 50% off, $5.99, #tag, @user, a|b, ~tilde, `code`, {braces}",
    "under_score hy-phen slash/path back\\slash colon:semi;comma,dot.",
    "emoji 😀 🥲 👍🏽 ❤️ 🇫🇷 family 👨‍👩‍👧 done",
    "中文字符和日本語のテキストと한국어 mixed with English",
    "です ます ガギグ",
    "zero\u200bwidth\u200cjoiner\u200d soft\u00adhyphen bom\ufeffhere",
    "control\x00chars\x01\x07\x1b and del\x7f and c1\x85 and replacement \ufffd char",
    "nbsp\u00a0thin\u2009ideographic\u3000line\u2028para\u2029sep",
    "private \ue000 use \U000F0000 and unassigned \u0378 code points",
    "a" * 100,
    "b" * 101,
    "supercalifragilisticexpialidocious" * 3 + " short",
    "x" * 99 + "é" + " tail",
    "qzxjv unknownish wordpieces xylophonist antidisestablishmentarianism",
    "numbers 3.14159 1,000,000 2024-11-25 12:30pm 1st 2nd 3rd",
    "URLs https://example.com/path?q=1&r=2#frag and emails someone@example.org",
    "Mixed CASE WoRdS and ALLCAPS and camelCaseWords",
    "tab\tseparated\tvalues\nand\nlines",
    "Ελληνικά και Русский текст, עברית, العربية, हिन्दी, ไทย",
    "fullwidth ＡＢＣ１２３ and halfwidth ｶﾀｶﾅ",
    "\u0301 leading combining mark",
    "ℌ𝔢𝔩𝔩𝔬 𝐛𝐨𝐥𝐝 ① ² ½ ™ © ®",
    "!!!???...,,,;;;",
]

# (question, context) pairs for windowing, with the (max_length, stride) grid run on each.
PAIRS = [
    ("Who wrote it?", ""),
    ("", "An empty question still gets windows."),
    ("What is the capital of France?", "Paris is the capital and most populous city of France."),
    ("Why do long contexts need windows?",
     " ".join(["The model reads at most a few hundred tokens at a time, so a long passage is cut "
               "into overlapping windows; each window repeats the question, and the answer is the "
               "best span over all of them."] * 2)),
    ("Où est la café?", "Le café est à côté de l'église, près du musée. 😀 Ça va? Très bien, merci! " * 2),
    ("How long is this question that keeps going and going with many many words in it?",
     "Short context with a few words. " * 6),
]
WINDOW_GRID = [(16, 0), (16, 4), (24, 8), (32, 1), (32, 15), (40, 13), (64, 21)]

N_SQUAD_PARAGRAPHS = 4  # real paragraphs tokenized in full (real vocab)
REAL_QA = [  # (squad file index, question index within the file, seq_len): long contexts, several windows
    (1, 0, 128), (1, 7, 128), (1, 40, 128), (1, 95, 384), (0, 3, 64), (0, 120, 128),
]


# ------------------------------------------------------------------ helpers

def f32(x) -> float:
    """A float32 value as the float64 whose shortest repr round-trips to the same float32."""
    return float(str(np.float32(x)))


def utf16_index(text: str) -> list[int]:
    """UTF-16 offset of each code point index of `text` (one more entry for the end)."""
    out, n = [0], 0
    for ch in text:
        n += 2 if ord(ch) > 0xFFFF else 1
        out.append(n)
    return out


def u16_offsets(text: str, offsets) -> list[list[int]]:
    idx = utf16_index(text)
    return [[idx[s], idx[e]] for s, e in offsets]


def squad_api():
    """pocketbert's SQuAD windowing and span search as (windows, best_span, doc_stride):
    windows(tok, question, context, seq_len) -> (inputs {name: ids} per window, context masks, offsets);
    best_span(start, end, masks, offsets) -> (char_start, char_end, score)."""
    from pocketbert import squad

    def windows(tok, question, context, seq_len):
        wins = squad.question_windows(tok, squad.Question("q", question, context), seq_len)
        return [dict(w.inputs) for w in wins], [w.context_mask for w in wins], [w.offsets for w in wins]

    return windows, squad.best_span, squad.doc_stride


# ------------------------------------------------------------------ sections

def tokenize_cases(tok, texts: list[str]) -> list[dict]:
    out = []
    for text in texts:
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        out.append({"text": text, "ids": enc["input_ids"],
                    "tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
                    "offsets": u16_offsets(text, enc["offset_mapping"])})
    return out


def window_cases(tok, pairs, grid) -> list[dict]:
    """HF's windows for return_overflowing_tokens + stride + only_second, or the error it raises."""
    out = []
    for question, context in pairs:
        for max_length, stride in grid:
            case: dict[str, Any] = {"question": question, "context": context, "max_length": max_length,
                                    "stride": stride}
            try:
                enc = tok(question, context, truncation="only_second", max_length=max_length, stride=stride,
                          return_overflowing_tokens=True, return_offsets_mapping=True)
            except BaseException as e:  # noqa: BLE001 - the refusal is part of the contract (a Rust panic too)
                if isinstance(e, KeyboardInterrupt):
                    raise
                case["error"] = "stride" if "stride" in str(e) else "too_short" if "too short" in str(e) else str(e)
                out.append(case)
                continue
            windows = []
            for i in range(len(enc["input_ids"])):
                seq = enc.sequence_ids(i)
                qi, ci = utf16_index(question), utf16_index(context)  # question tokens index the question
                windows.append({"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
                                "sequence_ids": [-1 if s is None else s for s in seq],
                                "offsets": [[0, 0] if s is None else [(qi, ci)[s][a], (qi, ci)[s][b]]
                                            for s, (a, b) in zip(seq, enc["offset_mapping"][i])]})
            case["windows"] = windows
            out.append(case)
    return out


def decode(context: str, start: list[np.ndarray], end: list[np.ndarray], masks, offsets) -> dict:
    _, best_span, _ = squad_api()
    c0, c1, score = best_span(start, end, masks, offsets)
    idx = utf16_index(context)
    found = bool(np.isfinite(score))
    return {"start": idx[c0], "end": idx[c1], "text": context[c0:c1] if found else "",
            "score": float(score) if found else None}


def qa_windows(tok, question, context, seq_len):
    windows, _, doc_stride = squad_api()
    inputs, masks, offsets = windows(tok, question, context, seq_len)
    return inputs, masks, offsets, doc_stride(seq_len)


def seeded_decode_cases(tok) -> list[dict]:
    """Span search on seeded logits over multi-window inputs, plus hand-made corner cases."""
    rng = np.random.default_rng(0)
    out = []

    def f32s(a):
        return np.asarray([f32(x) for x in a], dtype=np.float32)

    for k, (question, context) in enumerate(PAIRS):
        for seq_len in (40, 64):
            try:
                inputs, masks, offsets, stride = qa_windows(tok, question, context, seq_len)
            except BaseException as e:  # noqa: BLE001 - windowing refusals are covered by window_cases
                if isinstance(e, KeyboardInterrupt):
                    raise
                continue
            lens = [len(w["input_ids"]) for w in inputs]
            start = [rng.standard_normal(n).astype(np.float32) * 4 for n in lens]
            end = [rng.standard_normal(n).astype(np.float32) * 4 for n in lens]
            if k % 2:  # a strong start deep in the last window, a big end logit on a question token
                start[-1][-3] += 30
                end[0][1] += 30
            start, end = [f32s(a) for a in start], [f32s(a) for a in end]
            out.append({"question": question, "context": context, "seq_len": seq_len, "doc_stride": stride,
                        "start_logits": [a.tolist() for a in start], "end_logits": [a.tolist() for a in end],
                        "answer": decode(context, start, end, masks, offsets)})
    # max answer length: the best end is 41 tokens after the best start, one is exactly 30 tokens
    # after it, one lies before it; and equal logits everywhere else (ties: the lower index wins)
    question, context = "q?", " ".join(f"w{i % 10}" for i in range(60))
    inputs, masks, offsets, stride = qa_windows(tok, question, context, 128)
    n = len(inputs[0]["input_ids"])
    start, end = np.full(n, -5.0, dtype=np.float32), np.full(n, -5.0, dtype=np.float32)
    ctx = np.flatnonzero(masks[0])
    start[ctx[2]] = 9.0
    end[ctx[2] + 40] = 20.0
    end[ctx[2] + 29] = 1.0
    end[ctx[0]] = 15.0
    out.append({"question": question, "context": context, "seq_len": 128, "doc_stride": stride,
                "start_logits": [start.tolist()], "end_logits": [end.tolist()],
                "answer": decode(context, [start], [end], masks, offsets)})
    return out


def unicode_section(tok) -> dict:
    """BertNormalizer's output and BertPreTokenizer's split class for every code point, as ranges."""
    norm_fn = tok.backend_tokenizer.normalizer.normalize_str
    pre_fn = tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    sep = "|"  # ASCII punctuation: normalizes to itself, and nothing else normalizes to it
    norm: dict[int, str] = {}
    for i in range(0, len(cps), 8192):
        chunk = [c for c in cps[i:i + 8192] if chr(c) != sep]
        parts = norm_fn(sep.join(chr(c) for c in chunk)).split(sep)
        assert len(parts) == len(chunk)
        norm.update(zip(chunk, parts))
    norm[ord(sep)] = norm_fn(sep)
    classes: list[list] = []  # [first, last, class] runs; class: same|removed|space|cjk|map
    mapped: dict[str, str] = {}
    for c in cps:
        n, ch = norm[c], chr(c)
        cls = ("same" if n == ch else "removed" if n == "" else "space" if n == " "
               else "cjk" if n == f" {ch} " else "map")
        if cls == "map":
            mapped[str(c)] = n
        if classes and classes[-1][2] == cls and classes[-1][1] == c - 1:
            classes[-1][1] = c
        else:
            classes.append([c, c, cls])
    # pre-tokenizer: in "x" + ch + "x" ..., a punctuation char is its own piece, whitespace no piece
    split: list[list] = []
    for i in range(0, len(cps), 8192):
        chunk = cps[i:i + 8192]
        text = "".join("x" + chr(c) for c in chunk) + "x"
        pieces = pre_fn(text)
        covered: dict[int, str] = {}
        for piece, (s, e) in pieces:
            for p in range(s, e):
                covered[p] = "punct" if e - s == 1 and p % 2 == 1 else "word"
        for j, c in enumerate(chunk):
            cls = covered.get(2 * j + 1, "space")
            if cls == "word":
                continue
            if split and split[-1][2] == cls and split[-1][1] == c - 1:
                split[-1][1] = c
            else:
                split.append([c, c, cls])
    return {"normalize_runs": classes, "normalize_map": mapped, "split_runs": split}


def _runs(cps) -> list[list[int]]:
    out: list[list[int]] = []
    for c in sorted(cps):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def _removed_by(normalizer) -> set[int]:
    """Code points a `tokenizers` normalizer deletes when they stand alone."""
    sep = "|"
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and chr(c) != sep]
    out = set()
    for i in range(0, len(cps), 8192):
        chunk = cps[i:i + 8192]
        parts = normalizer.normalize_str(sep.join(chr(c) for c in chunk)).split(sep)
        assert len(parts) == len(chunk)
        out.update(c for c, p in zip(chunk, parts) if p == "")
    return out


def bert_unicode_tables(unicode: dict) -> dict[str, Any]:
    """The character classes of the `tokenizers` crate's own Unicode tables (an older Unicode
    than the JVM's or Android's), so the Kotlin port classifies every code point as HF does:
    control  deleted by clean_text (Cc/Cf/Co in its tables, NUL, U+FFFD)
    mark     deleted by strip_accents (Mn in its tables)
    punct    split off by BertPreTokenizer (ASCII symbols + P* in its tables)
    cjk      the ideograph blocks handle_chinese_chars isolates (as the crate spells them)
    lower    what lowercase makes of a code point (Rust's char::to_lowercase), where it changes it
    nfd      canonical decompositions (its Unicode version), Hangul syllables left to the algorithm"""
    from tokenizers import normalizers

    control = _removed_by(normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False,
                                                     strip_accents=False, lowercase=False))
    mark = _removed_by(normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                                  strip_accents=True, lowercase=False))
    punct = [r[:2] for r in unicode["split_runs"] if r[2] == "punct"]
    padded = _changed_by(normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True,
                                                    strip_accents=False, lowercase=False))
    cjk = _runs(c for c, v in padded.items() if v == f" {chr(c)} ")
    return {"CONTROL": _runs(control), "MARK": _runs(mark), "PUNCT": punct, "CJK": cjk,
            "LOWER": _changed_by(normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                                            strip_accents=False, lowercase=True)),
            "NFD": {c: v for c, v in _changed_by(normalizers.NFD()).items() if not 0xAC00 <= c <= 0xD7A3}}


def _changed_by(normalizer) -> dict[int, str]:
    """Every code point a `tokenizers` normalizer changes when it stands alone, and to what."""
    sep = "|"
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and chr(c) != sep]
    out = {}
    for i in range(0, len(cps), 8192):
        chunk = cps[i:i + 8192]
        parts = normalizer.normalize_str(sep.join(chr(c) for c in chunk)).split(sep)
        assert len(parts) == len(chunk)
        out.update((c, p) for c, p in zip(chunk, parts) if p != chr(c))
    return out


def kotlin_tables_source(tables: dict[str, Any]) -> str:
    import tokenizers

    lines = ["// Generated by scripts/make_android_golden.py from Hugging Face tokenizers "
             f"{tokenizers.__version__}'s BertNormalizer / BertPreTokenizer: do not edit.",
             "package org.pocketbert.qa", "",
             "/** Character classes exactly as the `tokenizers` crate's Unicode tables have them. */",
             "internal object BertUnicode {"]
    for name, runs in tables.items():
        if isinstance(runs, dict):  # code point -> string
            spec = ",".join(f"{c:x}>" + " ".join(f"{ord(x):x}" for x in v) for c, v in sorted(runs.items()))
            kind = "CodePointMap"
        else:
            spec = ",".join(f"{a:x}" if a == b else f"{a:x}-{b:x}" for a, b in runs)
            kind = "CodePointRanges"
        chunks = [spec[i:i + 100] for i in range(0, len(spec), 100)]
        lines.append(f"    val {name} = {kind}(")
        lines += [f'        "{c}" +' for c in chunks[:-1]] + [f'        "{chunks[-1]}",', "    )"]
    lines += ["}", ""]
    return "\n".join(lines)


def preset_section() -> dict:
    from pocketbert.models import generated_vocab, load_tokenizer

    tok = load_tokenizer(None)
    vocab = generated_vocab(1024)
    return {"vocab": vocab, "do_lower_case": True,
            "special_tokens": {k: getattr(tok, k) for k in ("cls_token_id", "sep_token_id", "pad_token_id",
                                                            "mask_token_id", "unk_token_id")},
            "tokenize": tokenize_cases(tok, TEXTS),
            "windows": window_cases(tok, PAIRS, WINDOW_GRID),
            "decode": seeded_decode_cases(tok)}


def squad_questions(shared: Path) -> list[list[tuple[str, str, str]]]:
    from pocketbert.squad import read_squad

    return [[(q.id, q.question, q.context) for q in read_squad(shared / f)] for f in SQUAD_FILES]


def real_logits(shared: Path, cases=REAL_QA, model_dir: Path | None = None, label: str = "teacher") -> list[dict]:
    """A trained QA model's float32 logits per window on SQuAD questions, and the decoded answers:
    minilm-l6-squad12 (the teacher), or a distilled student (`--student`: DistilBERT, whose inputs
    have no token_type_ids), whose logits the app decodes the same way."""
    import inspect

    import torch
    from transformers import AutoModelForQuestionAnswering

    from pocketbert.models import load_tokenizer

    model_dir = model_dir or shared / REAL_MODEL
    tok = load_tokenizer(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32).eval()
    accepted = set(inspect.signature(model.forward).parameters)
    questions = squad_questions(shared)
    out = []
    for file_index, q_index, seq_len in cases:
        qid, question, context = questions[file_index][q_index]
        inputs, masks, offsets, stride = qa_windows(tok, question, context, seq_len)
        start, end = [], []
        with torch.no_grad():
            for w in inputs:
                o = model(**{k: torch.tensor([v], dtype=torch.long) for k, v in w.items() if k in accepted})
                start.append(np.asarray([f32(x) for x in o.start_logits[0].numpy()], dtype=np.float32))
                end.append(np.asarray([f32(x) for x in o.end_logits[0].numpy()], dtype=np.float32))
        out.append({"model": label, "id": qid, "question": question, "context": context, "seq_len": seq_len,
                    "doc_stride": stride, "windows": [w["input_ids"] for w in inputs],
                    "start_logits": [a.tolist() for a in start], "end_logits": [a.tolist() for a in end],
                    "answer": decode(context, start, end, masks, offsets)})
    return out


def real_section(shared: Path) -> dict:
    from pocketbert.models import load_tokenizer

    vocab_path = shared / REAL_VOCAB
    tok = load_tokenizer(vocab_path)
    questions = squad_questions(shared)
    paragraphs = list(dict.fromkeys(c for _, _, c in questions[1]))[:N_SQUAD_PARAGRAPHS]
    pairs = [(q, c) for _, q, c in questions[1][:2]] + PAIRS[3:5]
    return {"vocab_file": str(REAL_VOCAB), "vocab_sha256": hashlib.sha256(vocab_path.read_bytes()).hexdigest(),
            "do_lower_case": True,
            "special_tokens": {k: getattr(tok, k) for k in ("cls_token_id", "sep_token_id", "pad_token_id",
                                                            "mask_token_id", "unk_token_id")},
            "tokenize": tokenize_cases(tok, TEXTS + paragraphs),
            "windows": window_cases(tok, pairs, [(64, 21), (128, 42), (384, 128)]),
            "qa": real_logits(shared)}


def build_golden(shared: Path | None) -> dict:
    """The whole golden file; the `real` section only when `shared` has the vocab, data and model."""
    from pocketbert.models import load_tokenizer

    golden: dict[str, Any] = {"format": FORMAT, "generated_by": "scripts/make_android_golden.py",
                              "offsets": "utf-16 code units of the original text",
                              "n_best": 20, "max_answer_tokens": 30,
                              "preset": preset_section(), "unicode": unicode_section(load_tokenizer(None))}
    if shared is not None and has_shared(shared):
        golden["real"] = real_section(shared)
    return golden


def has_shared(shared: Path) -> bool:
    return all((shared / p).exists() for p in (REAL_VOCAB, REAL_MODEL / "model.safetensors", *SQUAD_FILES))


def differences(committed: Any, fresh: Any, path: str = "", atol: float = 1e-4, limit: int = 10) -> list[str]:
    """Where `fresh` (regenerated) differs from `committed`: exact everywhere except model logits
    (`start_logits`/`end_logits` under `real.qa`, which vary in the last bits across CPUs)."""
    out: list[str] = []

    def walk(a, b, p):
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                if k not in a or k not in b:
                    out.append(f"{p}.{k}: only in {'fresh' if k in b else 'committed'}")
                else:
                    walk(a[k], b[k], f"{p}.{k}")
        elif isinstance(a, list) and isinstance(b, list):
            if p.startswith(".real.qa") and p.endswith(("start_logits", "end_logits")):
                if len(a) != len(b) or any(len(x) != len(y) or not np.allclose(x, y, atol=atol, rtol=0)
                                           for x, y in zip(a, b)):
                    out.append(f"{p}: logits differ by more than {atol}")
            elif len(a) != len(b):
                out.append(f"{p}: {len(a)} items committed, {len(b)} regenerated")
            else:
                for i, (x, y) in enumerate(zip(a, b)):
                    walk(x, y, f"{p}[{i}]")
        elif a != b and not (p.startswith(".real.qa") and p.endswith(".score")):
            out.append(f"{p}: committed {str(a)[:60]!r}, regenerated {str(b)[:60]!r}")

    walk(committed, fresh, path)
    return out


def decode_committed(golden: dict) -> list[str]:
    """Re-decode every stored logits case with today's Python span search: the stored answers
    must come out exactly (catches a change of decoding semantics the Kotlin port would miss)."""
    out = []
    sections = [("preset", golden["preset"], golden["preset"]["decode"])]
    if "real" in golden:
        sections.append(("real", golden["real"], golden["real"]["qa"]))
    for name, section, cases in sections:
        if name == "preset":
            from pocketbert.models import load_tokenizer

            tok = load_tokenizer(None)
        else:
            if not has_shared(SHARED):
                continue
            from pocketbert.models import load_tokenizer

            tok = load_tokenizer(SHARED / REAL_MODEL)
        for i, case in enumerate(cases):
            _, masks, offsets, _ = qa_windows(tok, case["question"], case["context"], case["seq_len"])
            start = [np.asarray(x, dtype=np.float32) for x in case["start_logits"]]
            end = [np.asarray(x, dtype=np.float32) for x in case["end_logits"]]
            got = decode(case["context"], start, end, masks, offsets)
            if got != case["answer"]:
                out.append(f"{name} case {i}: stored answer {case['answer']}, decoded now {got}")
    return out


def dumps(golden: dict) -> str:
    return json.dumps(golden, ensure_ascii=False, separators=(",", ":")) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared data/models folder")
    ap.add_argument("--out", type=Path, default=GOLDEN)
    ap.add_argument("--student", type=Path, help="a distilled QA student folder (e.g. runs/qa/students/l3/student "
                    "from scripts/repro_qa_distill.py): its logits join `real.qa` (kept from the committed file "
                    "when not given)")
    args = ap.parse_args(argv)
    golden = build_golden(args.shared)
    old = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    if "real" not in golden and "real" in old:
        golden["real"] = old["real"]
        print(f"{args.shared} absent: kept the committed `real` section", file=sys.stderr)
    elif "real" in golden:
        if args.student:
            name = f"student:{args.student.resolve().parent.name}"
            golden["real"]["qa"] += real_logits(args.shared, model_dir=args.student, label=name)
        else:  # the student's cases as committed (its weights are not in the repo)
            golden["real"]["qa"] += [c for c in old.get("real", {}).get("qa", [])
                                     if str(c.get("model", "")).startswith("student:")]
    from pocketbert.common import write_text_atomic

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, dumps(golden))
    write_text_atomic(TABLES, kotlin_tables_source(bert_unicode_tables(golden["unicode"])))
    print(f"wrote {TABLES}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

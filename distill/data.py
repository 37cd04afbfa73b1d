"""Corpus: plain-text files streamed and tokenized once into memory-mapped arrays.

`tokens.bin` holds every sequence's ids back to back (uint16 when the vocabulary fits), and
`offsets.npy` where each one starts; training reads them through np.memmap, so RAM stays flat
however long the run (no pickle of Python lists, the reference implementation's complaint).
Each non-empty line is one text; texts longer than `max_len` are cut into several sequences,
each framed by [CLS] ... [SEP].
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from pocketbert.common import UsageError, write_json

FORMAT_VERSION = 1


def check_text_file(path: Path) -> None:
    """Fail early on a missing, empty or binary corpus file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"corpus file {path} not found")
    head = path.open("rb").read(65536)
    if not head.strip():
        raise UsageError(f"corpus file {path} is empty: pass a plain-text file, one text per line")
    if b"\0" in head:
        raise UsageError(f"corpus file {path} looks binary (NUL bytes): pass UTF-8 plain text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # a multi-byte char cut at the end of the probe is fine
            raise UsageError(f"corpus file {path} is not UTF-8 text (bad byte at {e.start}): "
                             "pass plain text") from None


def _texts(paths: list[Path]) -> Iterator[str]:
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line:
                    yield line


def _batched(it: Iterator[str], n: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for x in it:
        batch.append(x)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def corpus_key(paths: list[Path], tokenizer, max_len: int, min_len: int) -> str:
    """Fingerprint of (files, sizes, mtimes, vocabulary, lengths): a cache is reused only when
    all of them match."""
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{Path(p).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(f"{max_len}|{min_len}|{FORMAT_VERSION}".encode())
    return h.hexdigest()[:16]


def build_corpus(paths: list[Path], tokenizer, cache_dir: Path, max_len: int = 512,
                 min_len: int = 3, lines_per_batch: int = 2000, progress: bool = True) -> Path:
    """Tokenize `paths` once into `cache_dir/<key>/` (reused when it exists); returns that folder."""
    from tqdm import tqdm

    paths = [Path(p) for p in paths]
    if not paths:
        raise UsageError("no corpus files: pass --data FILE [FILE ...]")
    for p in paths:
        check_text_file(p)
    if max_len < 8 or max_len > 512:
        raise UsageError(f"--max-len must be in 8..512, got {max_len}")
    folder = Path(cache_dir) / corpus_key(paths, tokenizer, max_len, min_len)
    if (folder / "meta.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(exist_ok=True)
    vocab = len(tokenizer)
    dtype = np.uint16 if vocab <= 65535 else np.int32
    counts = np.zeros(vocab, dtype=np.int64)
    offsets = [0]
    cls, sep, body = tokenizer.cls_token_id, tokenizer.sep_token_id, max_len - 2
    with open(tmp / "tokens.bin", "wb") as out:
        bar = tqdm(desc="tokenizing", unit=" lines", disable=not progress)
        for lines in _batched(_texts(paths), lines_per_batch):
            # long lines are cut into max_len pieces below: no need for the length warning
            enc = tokenizer(lines, add_special_tokens=False, verbose=False)["input_ids"]
            for ids in enc:
                for start in range(0, max(len(ids), 1), body):
                    piece = ids[start:start + body]
                    if len(piece) < min_len:
                        continue
                    seq = np.asarray([cls] + piece + [sep], dtype=dtype)
                    out.write(seq.tobytes())
                    np.add.at(counts, seq.astype(np.int64), 1)
                    offsets.append(offsets[-1] + len(seq))
            bar.update(len(lines))
        bar.close()
    if len(offsets) == 1:
        raise UsageError(f"corpus {', '.join(map(str, paths))} has no text with at least "
                         f"{min_len} tokens: nothing to train on")
    np.save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
    np.save(tmp / "counts.npy", counts)
    write_json(tmp / "meta.json", {"files": [str(p) for p in paths], "sequences": len(offsets) - 1,
                                   "tokens": offsets[-1], "max_len": max_len,
                                   "dtype": np.dtype(dtype).name, "format": FORMAT_VERSION})
    try:
        os.replace(tmp, folder)
    except OSError:  # another rank/process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return folder


class Corpus:
    """Read-only view of a built corpus (memory-mapped; cheap to open in every process)."""

    def __init__(self, folder: Path):
        meta = json.loads((Path(folder) / "meta.json").read_text())
        self.tokens = np.memmap(Path(folder) / "tokens.bin", dtype=meta["dtype"], mode="r")
        self.offsets = np.load(Path(folder) / "offsets.npy")
        self.counts = np.load(Path(folder) / "counts.npy")
        self.lengths = np.diff(self.offsets)  # (n_seq,)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.asarray(self.tokens[self.offsets[i]:self.offsets[i + 1]], dtype=np.int64)


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int,
                           group: int = 50) -> list[np.ndarray]:
    """One epoch's batches of sequence indices: shuffle, sort by length within chunks of
    `group` batches (little padding), then shuffle the batches. Deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    batches = []
    chunk = batch_size * group
    for s in range(0, len(order), chunk):
        part = order[s:s + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def collate(corpus: Corpus, indices: np.ndarray, pad_id: int):
    """Pad one batch. -> input_ids (bs, seq) int64, attention_mask (bs, seq) int64."""
    import torch

    seqs = [corpus[int(i)] for i in indices]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # (bs, seq)
    att = torch.zeros((len(seqs), width), dtype=torch.long)  # (bs, seq)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.from_numpy(s)
        att[r, :len(s)] = 1
    return ids, att

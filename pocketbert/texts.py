"""Plain text for the tasks that read sentences or passages (token classification, sentence
embeddings): a text file (one passage per line), a GLUE-style TSV (its sentence columns) or a SQuAD
v1.1 JSON (its contexts). numpy-free: the benchmark worker's side never needs it, the parent reads.
"""

from __future__ import annotations

import re
from pathlib import Path

from pocketbert import glue, squad
from pocketbert.common import UsageError
from pocketbert.readers import read_text_bounded

_HEADING = re.compile(r"^=( =)* .* =( =)*$")  # WikiText's " = Title = " / " = = Section = = " lines


def read_passages(path: str | Path) -> list[str]:
    """The passages of a file, in file order: SQuAD contexts (.json, each once), a TSV's sentences
    (.tsv: sentence1 and sentence2 of each row), or the non-empty lines of a text file (WikiText's
    headings skipped). A file with none is a one-line UsageError."""
    path = Path(path)
    if path.suffix == ".json":
        passages = list(dict.fromkeys(q.context for q in squad.read_squad(path, answers=False)))
    elif path.suffix == ".tsv":
        rows = glue.read_tsv(path)
        passages = [s for pair in zip(rows.first, rows.second or [None] * len(rows.first))
                    for s in pair if s]
    else:
        lines = read_text_bounded(path, what="text file").splitlines()  # regular, bounded, UTF-8
        passages = [s.strip() for s in lines if s.strip() and not _HEADING.match(s.strip())]
    if not passages:
        raise UsageError(f"{path} has no text (expected one passage per line, a GLUE-style TSV or SQuAD JSON)")
    return passages

"""Open a model file the user handed us (a plain .pte) without trusting it: a structural check of its
header first, then the runtime reads it in a child process. A corrupt file can abort the runtime's
C++ (std::terminate, SIGSEGV) and would take the whole benchmark with it; here it is one
`UnreadableModel` line, and the caller records that file as failed while the others still run.

  python -m bench.model_probe PATH SEQ_LEN   (the child: prints the facts as JSON)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from pocketbert.common import UsageError

PTE_IDENTIFIER = re.compile(rb"ET\d\d")  # a .pte is a flatbuffer: file identifier at bytes 4-8
PROBE_TIMEOUT_S = 300


class UnreadableModel(UsageError):
    """A model file the runtime cannot open: one failed record, not the end of the run."""


def check_pte_header(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or not PTE_IDENTIFIER.fullmatch(head[4:8]):
        raise UnreadableModel(f"{path}: not an ExecuTorch program (no ETnn flatbuffer identifier in its "
                              "header): a corrupt or truncated file, or another format")


def pte_facts_isolated(path: Path, seq_len: int) -> dict:
    """bench.bundles._pte_facts, run in a child process after the header check."""
    path = Path(path)
    check_pte_header(path)
    try:
        r = subprocess.run([sys.executable, "-m", "bench.model_probe", str(path.resolve()), str(seq_len)],
                           capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL,
                           cwd=Path(__file__).resolve().parent.parent)
    except subprocess.TimeoutExpired:
        raise UnreadableModel(f"{path}: the ExecuTorch runtime did not finish reading it in "
                              f"{PROBE_TIMEOUT_S} s") from None
    lines = r.stdout.strip().splitlines()
    if r.returncode == 0 and lines:
        return json.loads(lines[-1])
    if r.returncode == 2 and r.stderr.strip():  # the facts' own one-line UsageError
        raise UsageError(r.stderr.strip().splitlines()[-1])
    why = f"signal {-r.returncode}" if r.returncode < 0 else f"exit {r.returncode}"
    last = next((x.strip() for x in reversed(r.stderr.splitlines()) if x.strip()), "")
    raise UnreadableModel(f"{path}: the ExecuTorch runtime could not read it ({why}"
                          f"{': ' + last[:160] if last else ''}): a corrupt or incompatible .pte")


def _child(path: str, seq_len: str) -> int:
    from bench.bundles import _pte_facts

    try:
        facts = _pte_facts(Path(path), int(seq_len))
    except UsageError as e:
        print(" ".join(str(e).split()), file=sys.stderr)
        return 2
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:3]))

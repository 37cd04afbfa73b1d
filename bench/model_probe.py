"""Open a model file the user handed us (a plain file without manifest) without trusting it: the
runtime's structural check of the file first (PlainFile.check), then, for a runtime whose reader is
native code (PlainFile.isolated), the read in a child process. A corrupt file can abort a runtime's
C++ (std::terminate, SIGSEGV) and would take the whole benchmark with it; here it is one
`UnreadableModel` line, and the caller records that file as failed while the others still run.

  python -m bench.model_probe RUNTIME PATH SEQ_LEN   (the child: prints the facts as JSON)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pocketbert.backends import Runtime, get_runtime
from pocketbert.common import UsageError

PROBE_TIMEOUT_S = 300


class UnreadableModel(UsageError):
    """A model file the runtime cannot open: one failed record, not the end of the run."""


def read_plain_facts(runtime: Runtime, path: Path, seq_len: int) -> dict:
    """`runtime`'s PlainFile.read of `path`: after its structural check, and in a child process
    when the runtime asks for it."""
    path, plain = Path(path), runtime.plain_file
    if plain.check:
        try:
            plain.check(path)
        except UsageError as e:
            raise UnreadableModel(str(e)) from None
    if not plain.isolated:
        return plain.read(path, seq_len)
    label = runtime.label or runtime.name
    try:
        r = subprocess.run([sys.executable, "-m", "bench.model_probe", runtime.name, str(path.resolve()),
                            str(seq_len)], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                           stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent)
    except subprocess.TimeoutExpired:
        raise UnreadableModel(f"{path}: the {label} runtime did not finish reading it in "
                              f"{PROBE_TIMEOUT_S} s") from None
    lines = r.stdout.strip().splitlines()
    if r.returncode == 0 and lines:
        return json.loads(lines[-1])
    if r.returncode == 2 and r.stderr.strip():  # the facts' own one-line UsageError
        raise UsageError(r.stderr.strip().splitlines()[-1])
    why = f"signal {-r.returncode}" if r.returncode < 0 else f"exit {r.returncode}"
    last = next((x.strip() for x in reversed(r.stderr.splitlines()) if x.strip()), "")
    raise UnreadableModel(f"{path}: the {label} runtime could not read it ({why}"
                          f"{': ' + last[:160] if last else ''}): a corrupt or incompatible {plain.suffix} file")


def _child(runtime: str, path: str, seq_len: str) -> int:
    try:
        facts = get_runtime(runtime).plain_file.read(Path(path), int(seq_len))
    except UsageError as e:
        print(" ".join(str(e).split()), file=sys.stderr)
        return 2
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))

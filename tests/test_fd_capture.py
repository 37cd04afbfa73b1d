"""The one fd capture (pocketbert.common.fds_redirected) under the export log, the bench log and the
worker's log: C-level writes on fds 1 and 2 go to the file, the console copies still reach the
console, and the descriptors come back after the block, an error in it included."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CODE = r"""
import os, sys
from pathlib import Path
from bench.console import quiet_output
from pocketbert.common import fds_redirected, native_output_captured
log = Path(sys.argv[1])
try:
    with fds_redirected(log) as (out, err):
        os.write(1, b"c-level out\n"); os.write(2, b"c-level err\n")
        print("python out, captured")
        out.write("to the console's stdout\n"); err.write("to the console's stderr\n")
        raise RuntimeError("inside")
except RuntimeError:
    pass
os.write(1, b"after, on the console\n")
with quiet_output(log):
    os.write(2, b"quiet c-level\n")
    print("quiet print reaches the console")
with native_output_captured() as captured:
    os.write(1, b"native c-level\n")
    sys.stderr.write("a library warning\n")
    print("native print reaches the console")
print("captured:", repr(captured[0]))
"""


def test_fds_go_to_the_file_and_come_back(tmp_path):
    log = tmp_path / "sub" / "run.log"
    r = subprocess.run([sys.executable, "-c", CODE, str(log)], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["to the console's stdout", "after, on the console",
                                     "quiet print reaches the console", "native print reaches the console",
                                     "captured: 'native c-level\\na library warning\\n'"]
    assert r.stderr == "to the console's stderr\n"
    assert log.read_text().splitlines() == ["c-level out", "c-level err", "python out, captured", "quiet c-level"]

"""The seam between the harness and the machine that runs the models.

A Device runs one worker spec in a fresh process and returns its result dict. `LocalDevice` runs
`python -m bench.worker` here. A remote device (SSH to a board, adb to a phone) implements the
same two methods: copy the spec, items and bundle over, run the worker there, copy the result back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Protocol


class Device(Protocol):
    name: str

    def info(self) -> dict[str, Any]:
        """Machine facts for every record (CPU model, cores, ISA flags, OS...)."""
        ...

    def run_worker(self, spec: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """Run one worker spec in a fresh process; the result dict, or {"error": why}."""
        ...


THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class LocalDevice:
    """Runs workers as subprocesses of this Python. Ctrl-C stops the child and re-raises."""

    name = "local"

    def info(self) -> dict[str, Any]:
        from bench.machine import machine_info

        return {"device": self.name, **machine_info()}

    def run_worker(self, spec: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        env = dict(os.environ)
        if spec.get("threads"):
            # Before any import in the child: OpenMP/MKL pools size themselves at start-up.
            env.update({k: str(spec["threads"]) for k in THREAD_ENV})
        root = Path(__file__).resolve().parent.parent
        env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        with tempfile.TemporaryDirectory(prefix="pocketbert-worker-") as tmp:
            spec_path, result_path = Path(tmp, "spec.json"), Path(tmp, "result.json")
            spec_path.write_text(json.dumps(spec))
            proc = subprocess.Popen([sys.executable, "-m", "bench.worker", str(spec_path), str(result_path)],
                                    env=env, stdin=subprocess.DEVNULL)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _stop(proc)
                return {"error": f"timed out after {timeout_s:.0f} s"}
            except KeyboardInterrupt:
                _stop(proc)
                raise
            if result_path.is_file():
                return json.loads(result_path.read_text())
            if proc.returncode == 130 or proc.returncode == -signal.SIGINT:
                raise KeyboardInterrupt
            return {"error": f"worker exited with code {proc.returncode} and no result "
                             "(crashed or killed; out of memory?)"}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

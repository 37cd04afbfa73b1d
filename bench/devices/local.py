"""`local`: workers run as subprocesses of this Python. Ctrl-C stops the child and re-raises."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.devices import register_device
from bench.machine import machine_info
from pocketbert.backends import get_runtime
from pocketbert.contracts import WorkerResult, WorkerSpec

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
ROOT = Path(__file__).resolve().parents[2]  # the project root: what the worker imports


class LocalDevice:
    name = "local"

    def info(self) -> dict[str, Any]:
        return {"device": self.name, **machine_info()}

    def available(self, runtime: str) -> tuple[bool, str]:
        return get_runtime(runtime).available()

    def run_worker(self, spec: WorkerSpec, timeout_s: float | None = None) -> WorkerResult:
        env = dict(os.environ)
        if spec.threads:
            # Before any import in the child: OpenMP/MKL pools size themselves at start-up.
            env.update({k: str(spec.threads) for k in THREAD_ENV})
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        with tempfile.TemporaryDirectory(prefix=f"pocketbert-worker-{os.getpid()}-") as tmp:
            spec_path, result_path = Path(tmp, "spec.json"), Path(tmp, "result.json")
            spec_path.write_text(spec.to_json())
            proc = subprocess.Popen([sys.executable, "-m", "bench.worker", str(spec_path), str(result_path)],
                                    env=env, stdin=subprocess.DEVNULL,
                                    # its own session: a Ctrl-C at the terminal reaches this process only,
                                    # which stops the worker itself (no traceback from a worker mid-import)
                                    start_new_session=True,
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _stop(proc)
                return WorkerResult(error=f"timed out after {timeout_s:.0f} s")
            except KeyboardInterrupt:
                _stop(proc)
                raise
            if result_path.is_file():
                return WorkerResult.read(result_path)
            if proc.returncode in (130, 143) or proc.returncode in (-signal.SIGINT, -signal.SIGTERM):
                raise KeyboardInterrupt
            return WorkerResult(error=f"worker exited with code {proc.returncode} and no result "
                                      "(crashed or killed; out of memory?)")

    def close(self) -> None:
        pass


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it when the bench process dies, even by SIGKILL."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM: before the worker's main() runs it ends the process silently (Python's default); in
    main() it stops the work like Ctrl-C, without a traceback."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@register_device("local")
def open_local(url: str) -> LocalDevice:
    return LocalDevice()

"""The seam between the harness and the machines that run the models.

A Device runs one worker spec (`pocketbert.contracts.WorkerSpec`) in a fresh process and returns
its `pocketbert.contracts.WorkerResult`. Devices are named by URL — `local`,
`ssh://user@host[:port]`, `adb://SERIAL` — and each kind is one module of this package that
registers a factory for its scheme.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from pocketbert.common import UsageError
from pocketbert.contracts import WorkerResult, WorkerSpec
from pocketbert.registry import Registry


class Device(Protocol):
    name: str  # its URL: "local", "ssh://pi@board:22", "adb://SERIAL"

    def info(self) -> dict[str, Any]:
        """Identity for every record: model, CPU/SoC, cores and max frequencies, ABI, OS,
        governor, temperature where readable; `device` = name."""
        ...

    def available(self, runtime: str) -> tuple[bool, str]:
        """Whether backend `runtime` can run on this device, and why not."""
        ...

    def run_worker(self, spec: WorkerSpec, timeout_s: float | None = None) -> WorkerResult:
        """Run one WorkerSpec (its items in it) in a fresh process there: its samples and trust
        evidence, a record the device made itself, or the error."""
        ...

    def close(self) -> None:
        """Release connections and leave nothing running on the device."""
        ...


REGISTRY: Registry[Callable[[str], Device]] = Registry(__name__, "device kind")
DEVICES = REGISTRY.records


def register_device(scheme: str):
    """Register `factory(url) -> Device` for URLs `scheme://...` (`local` has no `://`)."""
    def deco(factory):
        return REGISTRY.register(factory, scheme)
    return deco


def device_schemes() -> list[str]:
    return sorted(REGISTRY.names())


def open_device(url: str) -> Device:
    """A Device for `url`; an unknown scheme fails listing the valid ones."""
    scheme = url.split("://", 1)[0] if "://" in url else url
    if "://" in url and not url.split("://", 1)[1]:
        raise UsageError(f"--device {url}: nothing after '{scheme}://'")
    return REGISTRY.get(scheme)(url)

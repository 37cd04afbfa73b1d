"""The seam between the harness and the machines that run the models.

A Device runs one worker spec (`pocketbert.contracts.WorkerSpec`) in a fresh process and returns
its result dict. Devices are named by URL — `local`, `ssh://user@host[:port]`, `adb://SERIAL` —
and each kind is one module of this package that registers a factory for its scheme.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Protocol

from pocketbert.common import UsageError, lookup


class Device(Protocol):
    name: str  # its URL: "local", "ssh://pi@board:22", "adb://SERIAL"

    def info(self) -> dict[str, Any]:
        """Identity for every record: model, CPU/SoC, cores and max frequencies, ABI, OS,
        governor, temperature where readable; `device` = name."""
        ...

    def available(self, runtime: str) -> tuple[bool, str]:
        """Whether backend `runtime` can run on this device, and why not."""
        ...

    def run_worker(self, spec, timeout_s: float | None = None) -> dict[str, Any]:
        """Run one WorkerSpec in a fresh process there; the result dict, or {"error": why}."""
        ...

    def close(self) -> None:
        """Release connections and leave nothing running on the device."""
        ...


DEVICES: dict[str, Callable[[str], Device]] = {}
_loaded = False


def register_device(scheme: str):
    """Register `factory(url) -> Device` for URLs `scheme://...` (`local` has no `://`)."""
    def deco(factory):
        DEVICES[scheme] = factory
        return factory
    return deco


def device_schemes() -> list[str]:
    global _loaded
    if not _loaded:
        _loaded = True
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            importlib.import_module(f"{__name__}.{info.name}")
    return sorted(DEVICES)


def open_device(url: str) -> Device:
    """A Device for `url`; an unknown scheme fails listing the valid ones."""
    device_schemes()
    scheme = url.split("://", 1)[0] if "://" in url else url
    if "://" in url and not url.split("://", 1)[1]:
        raise UsageError(f"--device {url}: nothing after '{scheme}://'")
    factory = lookup(DEVICES, scheme, "device kind")
    return factory(url)

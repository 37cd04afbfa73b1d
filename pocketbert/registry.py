"""One shape for the project's registries (runtimes, export targets, devices): records by name,
registered by the modules of one package when they are imported; the first lookup imports that
package's modules (and, where asked, the plugins); an unknown name fails listing the valid ones.

Plugins come from the `pocketbert.backends` entry points and the POCKETBERT_PLUGINS variable
(module names or .py paths, separated by os.pathsep), loaded once per process; a plugin that
cannot be loaded is one line on stderr, and everything else still works.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path
from typing import Callable, Generic, TypeVar

from pocketbert.common import UsageError, lookup

T = TypeVar("T")


class Registry(Generic[T]):
    """Records of one kind under their names. `records` is the plain dict (tests patch it)."""

    def __init__(self, package: str, what: str, plugins: bool = False,
                 order: Callable[[T], object] | None = None):
        self.package = package  # whose modules register the built-in records
        self.what = what  # "runtime", "export target": error messages
        self.plugins = plugins  # also load the plugins after the built-ins
        self.order = order  # sort key of all(); None: registration order
        self.records: dict[str, T] = {}
        self._loaded = False

    def register(self, record: T, name: str | None = None) -> T:
        """Add a record (a module's last line) under `name` (default: its `name`); a second one with
        the same name replaces the first."""
        self.records[name or record.name] = record
        return record

    def load(self) -> None:
        """Import the package's modules (their registrations), once; then the plugins."""
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            importlib.import_module(f"{self.package}.{info.name}")
        if self.plugins:
            load_plugins()

    def all(self) -> dict[str, T]:
        self.load()
        if self.order is None:
            return self.records
        return dict(sorted(self.records.items(), key=lambda kv: self.order(kv[1])))

    def get(self, name: str, what: str | None = None) -> T:
        """The record called `name`, or a UsageError listing the valid names."""
        return lookup(self.all(), name, what or self.what)

    def names(self) -> list[str]:
        return list(self.all())


_plugins_loaded = False


def load_plugins() -> None:
    """The `pocketbert.backends` entry points and POCKETBERT_PLUGINS, once per process (the runtime
    and export-target registries both call it after their built-ins)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group="pocketbert.backends"):
            ep.load()
    except Exception as e:  # noqa: BLE001 - a broken third-party plugin must say so, not crash --help
        print(f"pocketbert: a pocketbert.backends entry point failed to load: {e}", file=sys.stderr)
    for spec in filter(None, os.environ.get("POCKETBERT_PLUGINS", "").split(os.pathsep)):
        try:
            load_plugin(spec)
        except Exception as e:  # noqa: BLE001 - missing, raising or not Python: one line, --help still works
            why = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            why = why.removeprefix("POCKETBERT_PLUGINS: ")
            print(f"pocketbert: POCKETBERT_PLUGINS: plugin {spec} not loaded ({type(e).__name__}: {why}); "
                  "its backends are unavailable", file=sys.stderr)


def load_plugin(spec: str) -> None:
    """Import a plugin module by name or by .py path (its import registers its records)."""
    if spec.endswith(".py"):
        path = Path(spec)
        name = f"pocketbert_plugin_{path.stem}"
        if name in sys.modules:
            return
        mod_spec = importlib.util.spec_from_file_location(name, path)
        if mod_spec is None or not path.is_file():
            raise UsageError(f"POCKETBERT_PLUGINS: {spec} not found")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]  # a half-run plugin is not loaded
            raise
    else:
        importlib.import_module(spec)

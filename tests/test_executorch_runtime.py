"""The ExecuTorch runtime's C++ extension, whichever executorch release is installed: 1.4's
pybindings._portable_lib, 1.5's pybindings._C. The bench worker imports the runtime's modules before
its load clock; a name the release lacks would fail every ExecuTorch record."""

import importlib

import pytest

pytest.importorskip("executorch")

from pocketbert.backends import get_runtime  # noqa: E402
from pocketbert.backends.executorch import PYBINDINGS, pybindings, pybindings_name  # noqa: E402


def test_every_module_the_worker_imports_exists_in_this_release():
    modules = get_runtime("executorch").runtime_modules
    assert pybindings_name() in modules and pybindings_name() in PYBINDINGS
    for name in modules:
        importlib.import_module(name)


def test_the_extension_found_is_the_runtime_itself():
    runtime = pybindings()
    assert runtime.__name__ == pybindings_name()
    for fn in ("_load_program", "_load_for_executorch", "_unsafe_reset_threadpool", "_threadpool_get_thread_count"):
        assert callable(getattr(runtime, fn)), fn

"""pocketbert.registry: the one shape of the runtime, export-target and device registries."""

import sys

import pytest

from pocketbert.common import UsageError
from pocketbert.registry import Registry


def test_a_lookup_imports_the_package_modules_and_an_unknown_name_lists_the_valid_ones(tmp_path, monkeypatch):
    pkg = tmp_path / "fakeregpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pocketbert.registry import Registry\n"
                                     "REGISTRY = Registry(__name__, 'widget', order=lambda w: w[1])\n")
    for name, rank in (("b", 1), ("a", 2)):
        (pkg / f"mod_{name}.py").write_text(f"from fakeregpkg import REGISTRY\nREGISTRY.register(({name!r}, {rank}), {name!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import fakeregpkg

    try:
        reg = fakeregpkg.REGISTRY
        assert reg.records == {}  # nothing imported before the first lookup
        assert reg.get("a") == ("a", 2)
        assert reg.names() == ["b", "a"]  # the registry's order (rank), not the file order
        with pytest.raises(UsageError, match="unknown widget 'c': choose one of a, b$"):
            reg.get("c")
        reg.register(("a", 0), "a")  # a second record of a name replaces the first
        assert reg.names() == ["a", "b"]
    finally:
        for m in [m for m in sys.modules if m.startswith("fakeregpkg")]:
            del sys.modules[m]


def test_records_register_under_their_own_name_by_default():
    class Rec:
        name = "x"

    reg: Registry = Registry("pocketbert", "thing")
    rec = reg.register(Rec())
    assert reg.records == {"x": rec}

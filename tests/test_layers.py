"""The layers, checked on the source: foundation (pocketbert/) < export/, distill/ < bench/ < the
commands that sit on top (android_demo/). A module imports only its own package and the layers
below; export/ and distill/ never import each other. Every import counts, a function's own
included: a lazy import is still a dependency. No import circles between modules either.

`forbidden_imports` and `import_cycles` are plain functions over a source tree, so the tests
below also show them catching an injected forbidden import and an injected circle."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"pocketbert": 0, "export": 1, "distill": 1, "bench": 2, "android_demo": 3}


def own_imports(root: Path) -> dict[str, list[tuple[str, int, bool]]]:
    """module -> [(imported own module, line, at top level)] for every .py file of the packages."""
    out: dict[str, list[tuple[str, int, bool]]] = {}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            tree = ast.parse(path.read_text(), str(path))
            top = {id(node) for node in tree.body}
            found = []
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    # `from pkg import mod` imports pkg.mod when it is a module of pkg
                    names = [f"{node.module}.{a.name}" if (root / node.module.replace(".", "/") / f"{a.name}.py")
                             .is_file() else node.module for a in node.names]
                else:
                    continue
                found += [(n, node.lineno, id(node) in top) for n in dict.fromkeys(names)
                          if n.split(".")[0] in LAYERS]
            out[module] = found
    return out


def forbidden_imports(root: Path) -> list[str]:
    """'module:line imports other' for each import that goes up a layer or sideways."""
    bad = []
    for module, imports in own_imports(root).items():
        src = module.split(".")[0]
        for target, line, _ in imports:
            dst = target.split(".")[0]
            if dst != src and LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{module}:{line} imports {target}")
    return bad


def import_cycles(root: Path) -> list[list[str]]:
    """Circles in the module import graph (each as the modules on it, once)."""
    graph: dict[str, set[str]] = {}
    modules = own_imports(root)
    for module, imports in modules.items():
        graph[module] = {t for t, _, _ in imports if t in modules and t != module}
    cycles, seen = [], set()
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


def test_no_layer_imports_a_layer_above_it_or_beside_it():
    assert forbidden_imports(ROOT) == []


def test_no_import_circles():
    assert import_cycles(ROOT) == []


def _copy(tmp_path: Path) -> Path:
    for package in LAYERS:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_an_injected_forbidden_import_is_caught(tmp_path):
    root = _copy(tmp_path)
    inputs = root / "pocketbert" / "inputs.py"
    inputs.write_text(inputs.read_text() + "\n\ndef later():\n    from bench.harness import run_bench\n")
    export_cli = root / "export" / "cli.py"
    export_cli.write_text("import distill.config\n" + export_cli.read_text())
    bad = forbidden_imports(root)
    assert any(b.startswith("pocketbert.inputs:") and b.endswith("imports bench.harness") for b in bad), bad
    assert any(b.startswith("export.cli:1 imports distill.config") for b in bad), bad
    assert len(bad) == 2


def test_an_injected_circle_is_caught(tmp_path):
    root = _copy(tmp_path)
    bundle = root / "export" / "bundle.py"  # export.pipeline imports export.bundle
    bundle.write_text(bundle.read_text() + "\n\ndef later():\n    from export.pipeline import run_export\n")
    assert any(set(c) >= {"export.bundle", "export.pipeline"} for c in import_cycles(root))


# ------------------------------------------------------------------ backend names stay in their records

def backend_mentions(root: Path, package: str = "bench") -> list[str]:
    """'file:line: token' for each runtime or export-target name, or plain-file suffix, that the
    code of `package` spells out: in a string (docstrings aside: prose may name examples) or an
    identifier. Export knobs the bench passes through by their ExportConfig name are allowed."""
    import dataclasses
    import re

    from export.pipeline import ExportConfig
    from export.targets import all_targets
    from pocketbert.backends import all_runtimes

    names = {n.lower() for n in [*all_runtimes(), *all_targets()]}
    suffixes = tuple(r.plain_file.suffix for r in all_runtimes().values() if r.plain_file)
    allowed = {f.name for f in dataclasses.fields(ExportConfig)}

    def hits(text: str) -> list[str]:
        tokens = re.split(r"[^A-Za-z0-9_.]+", text)
        return [t for t in tokens if t and t not in allowed and (
            t.lower().strip(".") in names or t.lower().endswith(suffixes)
            or any(part in names for part in t.lower().split("_") if len(t.split("_")) > 1))]

    out = []
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            texts = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                texts = [node.value]
            elif isinstance(node, ast.Name):
                texts = [node.id]
            elif isinstance(node, ast.Attribute):
                texts = [node.attr]
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                texts = [node.name]
            elif isinstance(node, ast.arg):
                texts = [node.arg]
            elif isinstance(node, ast.keyword) and node.arg:
                texts = [node.arg]
            out += [f"{path.relative_to(root)}:{node.lineno}: {t}" for text in texts for t in hits(text)]
    return out


# Not a runtime choice, so not a record's field: minibench.py holds the facts of ExecuTorch's own Android
# programs the adb device drives (its benchmark app, its runner's log tag); paper.py quotes the paper's row.
NAMED_ON_PURPOSE = ("bench/devices/minibench.py:", "bench/paper.py:")


def test_bench_code_names_no_backend():
    """What bench needs of a backend is a field of its Runtime / ExportTarget record (main-job
    pairs, plain-file suffix, probe program, export time, phone support), never its name."""
    assert [m for m in backend_mentions(ROOT) if not m.startswith(NAMED_ON_PURPOSE)] == []


def test_an_injected_backend_name_is_caught(tmp_path):
    root = _copy(tmp_path)
    harness = root / "bench" / "harness.py"
    harness.write_text(harness.read_text() + '\n\nMAIN = (("onnx", "fp32"),)\n')
    found = [m for m in backend_mentions(root) if not m.startswith(NAMED_ON_PURPOSE)]
    assert [m.split(": ")[1] for m in found] == ["onnx"] and found[0].startswith("bench/harness.py:")


# ------------------------------------------------------------------ bench holds no runtime code

RUNTIME_LIBRARIES = ("torch", "torchao", "transformers", "onnxruntime", "onnx", "onnxscript", "executorch",
                     "coremltools")


def runtime_imports(root: Path, package: str = "bench") -> list[str]:
    """'file:line: module' for each import of a runtime library in `package`, lazy ones included."""
    out = []
    for path in sorted((root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            out += [f"{path.relative_to(root)}:{node.lineno}: {n}" for n in names
                    if n.split(".")[0] in RUNTIME_LIBRARIES]
    return out


def test_bench_holds_no_runtime_code():
    """bench reaches a runtime only through its record in pocketbert/backends (load, profile, GemmProbe,
    LibraryGemm) and models through pocketbert/models: it imports no runtime library itself."""
    assert runtime_imports(ROOT) == []


def test_an_injected_runtime_import_is_caught(tmp_path):
    root = _copy(tmp_path)
    machine = root / "bench" / "machine.py"
    machine.write_text(machine.read_text() + "\n\ndef probe():\n    import onnxruntime as ort\n")
    assert [m.split(": ")[1] for m in runtime_imports(root)] == ["onnxruntime"]


# ------------------------------------------------------------------ own modules at the top of a file

HEAVY = ("torch", "transformers", "executorch", "onnxruntime", "onnx", "coremltools", "torchao", "onnxscript",
         "onnx_ir", "tqdm", "psutil", "matplotlib")
NOT_YET = ("distill",)  # being split in its own change; its function-local imports are left to it


def heavy_modules(root: Path) -> set[str]:
    """Own modules that import a heavy runtime (or such a module) when they are imported."""
    heavy, top = set(), {m: [t for t, _, at_top in imports if at_top] for m, imports in own_imports(root).items()}
    for module in top:
        tree = ast.parse((root / (module.replace(".", "/") + ".py")).read_text()
                         if (root / (module.replace(".", "/") + ".py")).is_file()
                         else (root / module.replace(".", "/") / "__init__.py").read_text())
        for node in tree.body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            if any(n.split(".")[0] in HEAVY for n in names):
                heavy.add(module)
    grew = True
    while grew:
        grew = False
        for module, targets in top.items():
            if module not in heavy and any(t in heavy for t in targets):
                heavy.add(module)
                grew = True
    return heavy


def lazy_own_imports(root: Path) -> list[str]:
    """Function-local imports of own modules that are not heavy: they belong at the top."""
    heavy = heavy_modules(root)
    return [f"{module}:{line} imports {target}" for module, imports in own_imports(root).items()
            if not module.startswith(NOT_YET) for target, line, at_top in imports
            if not at_top and target not in heavy and not target.startswith(NOT_YET)]


def test_own_modules_are_imported_at_the_top():
    """Lazy imports are for heavy runtimes only (and the modules that import them), so `--help`
    stays instant; everything else sits at the top, where a reader sees a file's dependencies."""
    # bench/devices/adb.py registers itself at its foot (the registry imports the device modules)
    assert [m for m in lazy_own_imports(ROOT) if not m.startswith("bench.devices.adb:")] == []

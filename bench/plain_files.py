"""Plain model files (peers): a model file the user already has (an optimum-cli ONNX folder or file, an
optimum-executorch .pte, any .onnx/.pte) has no manifest. `read_plain_file` derives what the harness
needs from the file itself as a `PlainFile`: the fields a bundle's Manifest has, under the same names
(the plan, the worker spec and the record read either), plus `peer`, so a peer runs through exactly
the same plan, worker and record as a bundle."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Union

from pydantic import Field

from bench.model_probe import UnreadableModel, read_plain_facts
from pocketbert.backends import plain_suffixes
from pocketbert.common import UsageError, sha256_file
from pocketbert.contract_base import Strict
from pocketbert.contracts import FileEntry, Manifest
from pocketbert.inputs import FEATURES
from pocketbert.models import config_parameters
from pocketbert.tasks import task_names

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
GENERIC_STEMS = ("model", "model_quantized")  # optimum-cli's file names: the folder says which one it is


class PlainTensor(Strict):
    """An input or output of a plain file, as the file declares it (a shape may name its axes freely)."""

    name: str
    shape: list[Any]
    dtype: str = ""  # inputs: int64 / int32 (outputs: not read)
    feature: str = ""  # inputs: the tokenizer output that feeds it (input_ids, attention_mask, ...)


class PeerFacts(Strict):
    """Where a plain file's facts came from (the record keeps them in notes.peer)."""

    file: str  # the file itself (re-checked by sha256 before it is timed)
    label: str  # its record label (peer_labels)
    precision_from: str
    task_from: str = "outputs"
    tokenizer: str | None = None  # its folder when it holds tokenizer files
    config_json: bool = False


class PlainFile(Strict):
    """A plain model file read as the harness needs it (read_plain_file)."""

    target: str  # the runtime that runs it
    precision: str
    task: str
    model_type: str = ""
    source: str  # its label
    model_file: str
    seq_len: int
    dynamic_seq: bool
    inputs: list[PlainTensor]
    outputs: list[PlainTensor]
    files: dict[str, FileEntry]
    parameters: dict[str, int]
    config: dict[str, Any] = Field(default_factory=dict)  # config.json beside it ({}: none)
    peer: PeerFacts
    notes: dict[str, Any] = Field(default_factory=dict)  # a bundle's notes: none here
    delegation: None = None  # not counted for a plain file

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]


Opened = Union[Manifest, PlainFile]  # what --bundle gives the plan: a bundle's manifest or a plain file


def is_plain_file(path: Path) -> bool:
    return Path(path).is_file() and Path(path).suffix in plain_suffixes()


def find_plain_files(root: Path) -> list[Path]:
    """Model files at `root` (a file, or a folder holding .onnx/.pte files, e.g. optimum-cli's
    output), else in its direct subfolders that have no manifest.json."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    here = sorted(p for p in root.iterdir() if is_plain_file(p))
    if here:
        return here
    return sorted(p for d in sorted(root.iterdir()) if d.is_dir() and not (d / "manifest.json").exists()
                  for p in d.iterdir() if is_plain_file(p))


def plain_file_error(path: Path) -> str:
    """The one line for a path that is neither a bundle nor a model file we can time."""
    kinds = ", ".join(f"a {s} file" for s in plain_suffixes())
    what = (f"{path} ({Path(path).suffix or 'no suffix'})" if Path(path).is_file()
            else f"folder {path}" if Path(path).is_dir() else f"{path} not found")
    return (f"{what}: expected a pocketbert bundle (manifest.json), an export --out folder, {kinds}, "
            "or a folder holding one (e.g. optimum-cli's output)")


def feature_for(name: str) -> str | None:
    """Which tokenizer output feeds a file's input called `name` (None: not one we know)."""
    n = name.lower()
    if n in FEATURES:
        return n
    if "type" in n or "segment" in n:
        return "token_type_ids"
    if "mask" in n:
        return "attention_mask"
    if n in ("ids", "input", "inputs", "tokens", "x") or "input_id" in n or "token_id" in n:
        return "input_ids"
    return None


def map_inputs(path: Path, names: list[str]) -> list[str]:
    """The tokenizer feature of each input (one-line UsageError naming what it expected)."""
    features = [feature_for(n) for n in names]
    unknown = [n for n, f in zip(names, features) if f is None]
    if unknown or len(set(features)) != len(features):
        problem = (f"cannot map input(s) {', '.join(unknown)}" if unknown
                   else f"two inputs map to the same feature ({', '.join(names)})")
        raise UsageError(f"{path}: {problem}: expected inputs named like {', '.join(FEATURES)} "
                         "(ids / mask / type or segment)")
    return features


def read_plain_file(path: Path, task: str | None = None, labels: dict[Path, str] | None = None,
                    seq_len: int = 384) -> PlainFile:
    """A plain .onnx/.pte file's facts: backend from the suffix, inputs (names,
    dtypes, fixed or dynamic length) and outputs read from the file, task from the outputs (or the
    `task` hint), precision from the graph (.onnx) or the name (.pte), tokenizer and config.json
    from its folder, and its sha256 (re-checked before it is timed)."""
    path = Path(path)
    runtime = plain_suffixes().get(path.suffix)
    if runtime is None:
        raise UsageError(plain_file_error(path))
    try:
        facts = read_plain_facts(runtime, path, seq_len)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt file: one line, not a traceback
        raise UnreadableModel(f"{path}: cannot read it as {runtime.plain_file.what} "
                         f"({type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''})")
    features = map_inputs(path, facts["input_names"])
    derived = _task_from_outputs(facts["outputs"])
    if not (task or derived):
        shapes = "; ".join(f"{o['name']} {o['shape']}" for o in facts["outputs"])
        raise UsageError(f"{path}: cannot tell its task from its outputs ({shapes}): pass --task "
                         f"({' | '.join(task_names())})")
    folder = path.parent
    config = _config_beside(folder)
    size = path.stat().st_size
    tokenizer = folder if any((folder / f).is_file() for f in TOKENIZER_FILES) else None
    label = (labels or {}).get(path, path.name)
    return PlainFile(
        target=runtime.name, precision=facts["precision"], task=task or derived,
        model_type=config.get("model_type", ""), source=label, model_file=path.name,
        seq_len=facts["seq_len"] or seq_len, dynamic_seq=facts["seq_len"] is None,
        inputs=[PlainTensor(name=n, feature=f, dtype=d, shape=s) for n, f, d, s in
                zip(facts["input_names"], features, facts["dtypes"], facts["shapes"])],
        outputs=[PlainTensor(name=o["name"], shape=o["shape"]) for o in facts["outputs"]],
        files={path.name: FileEntry(bytes=size, sha256=sha256_file(path))},
        parameters=_parameters(config, task or derived, facts.get("parameters")), config=config,
        peer=PeerFacts(file=str(path), label=label, precision_from=facts["precision_from"],
                       task_from="--task" if task else "outputs", tokenizer=str(tokenizer) if tokenizer else None,
                       config_json=bool(config)))


def peer_labels(paths: list[Path]) -> dict[Path, str]:
    """Each file's record label: its name, or parent-name when the name says little (optimum-cli
    writes model.onnx / model_quantized.onnx into every folder) or two files share it."""
    count = Counter(p.name for p in paths)
    return {p: p.name if count[p.name] == 1 and p.stem not in GENERIC_STEMS else f"{p.parent.name}-{p.name}"
            for p in paths}


def verify_plain_file(plain: PlainFile) -> None:
    """The file is still the one read at the start (sha256), or a one-line UsageError."""
    path, meta = Path(plain.peer.file), plain.files[plain.model_file]
    if not path.is_file() or path.stat().st_size != meta.bytes or sha256_file(path) != meta.sha256:
        raise UsageError(f"{path} changed since the run started (sha256): not timing another file")


def _task_from_outputs(outputs: list[dict]) -> str | None:
    names = [o["name"].lower() for o in outputs]
    if len(outputs) == 2 and ("start_logits" in names or all(len(o["shape"]) == 2 for o in outputs)):
        return "question-answering"
    if len(outputs) == 1 and names[0] in ("sentence_embedding", "last_hidden_state"):
        return "feature-extraction"  # ours (pooled) or a bare encoder's token states (pooled after the call)
    if len(outputs) == 1 and len(outputs[0]["shape"]) == 2:
        return "sequence-classification"
    if len(outputs) == 1 and len(outputs[0]["shape"]) == 3:
        return "fill-mask"
    return None


def _config_beside(folder: Path) -> dict:
    p = Path(folder) / "config.json"
    try:
        return json.loads(p.read_text()) if p.is_file() else {}
    except (OSError, ValueError):
        return {}


def _parameters(config: dict, task: str, counted: dict | None) -> dict[str, int]:
    """From config.json (the HF model built on the meta device: what our bundles report), else
    the file's own weight count, else zeros (a .pte with no config.json beside it)."""
    return ((config.get("model_type") and config_parameters(config, task)) or counted
            or {"total": 0, "non_embedding": 0})

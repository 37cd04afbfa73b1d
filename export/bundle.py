"""The bundle: one self-contained folder per (target, precision) with the model file, the tokenizer
files and `manifest.json` (the `pocketbert.contracts.Manifest` model, format "pocketbert-bundle/2";
/1 still reads). This module finds, describes and verifies bundles; nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path

from pocketbert.common import UsageError, file_size, sha256_path
from pocketbert.contracts import FileEntry, Manifest

MANIFEST = "manifest.json"


def describe_files(bundle: Path) -> dict[str, FileEntry]:
    """name -> its size and sha256, for every top-level entry of the bundle except the manifest."""
    return {p.name: FileEntry(bytes=file_size(p), sha256=sha256_path(p))
            for p in sorted(Path(bundle).iterdir()) if p.name != MANIFEST and not p.name.startswith(".")}


def read_manifest(bundle: Path, verify: bool = True) -> Manifest:
    """Read a bundle's manifest; with verify, check every listed file's size and sha256.

    Raises UsageError naming the bundle and the mismatching file, so a benchmark never times a
    model other than the one the manifest describes.
    """
    bundle = Path(bundle)
    path = bundle / MANIFEST
    if not path.is_file():
        raise UsageError(f"{bundle} is not a pocketbert bundle (no {MANIFEST}): "
                         "create one with `pocketbert export`")

    manifest = Manifest.read(path)
    if verify:
        verify_files(bundle, manifest.files)
    return manifest


def verify_files(bundle: Path, files: dict[str, FileEntry]) -> None:
    """Every file listed (a manifest's `files`) is there with its size and sha256, or a UsageError naming it."""
    for name, meta in files.items():
        p = Path(bundle) / name
        if not p.exists():
            raise UsageError(f"bundle {bundle}: {name} listed in the manifest is missing")
        if file_size(p) != meta.bytes or sha256_path(p) != meta.sha256:
            raise UsageError(f"bundle {bundle}: {name} does not match its sha256 in the "
                             "manifest (modified or truncated): re-export the bundle")


def find_bundles(root: Path) -> list[Path]:
    """Bundle folders at `root` or directly below it (an export run's --out holds several)."""
    root = Path(root)
    if (root / MANIFEST).is_file():
        return [root]
    return sorted(p.parent for p in root.glob(f"*/{MANIFEST}"))

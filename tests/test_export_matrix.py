"""scripts/export_matrix.py: every cell it writes is a parity figure or a one-line reason."""

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import export_matrix  # noqa: E402


def test_cells_come_from_the_registries():
    from export.targets import all_targets
    from pocketbert.families import families
    from pocketbert.tasks import all_tasks

    cells = export_matrix.cells()
    assert {c[0] for c in cells} == set(families())
    assert {c[1] for c in cells} == set(all_tasks())
    assert {c[2] for c in cells} == set(all_targets())
    assert {c[3] for c in cells} == set(export_matrix.PRECISIONS)


@pytest.mark.heavy
def test_the_generator_exports_or_refuses_every_cell_with_its_reason(tmp_path):
    out, raw = tmp_path / "m.md", tmp_path / "m.json"
    assert export_matrix.main(["--families", "distilbert", "deberta-v2", "--tasks", "question-answering",
                               "--targets", "onnx", "coreml", "--jobs", "2", "--out", str(out),
                               "--json", str(raw)]) == 0
    results = json.loads(raw.read_text())
    assert len(results) == 2 * 1 * 2 * 2
    for r in results:
        assert r["status"] in ("exported", "refused"), r
        if r["status"] == "exported" and r["target"] == "onnx":
            assert r["parity"]["status"] == "passed"
    text = out.read_text()
    # the columns follow the target registry's order (coreml registers first when export.config loads it)
    assert "| deberta-v2 | sentencepiece | " in text and re.search(r"^\| distilbert \| wordpiece \|.* ✓ ", text, re.M)
    assert "refused: deberta-v2 models cannot be exported to coreml fp32: " in text

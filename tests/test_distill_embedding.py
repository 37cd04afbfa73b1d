"""Embedding distillation on a tiny seeded teacher: the student's pooled embedding moves towards the
teacher's on held-out text, and it is saved as a sentence-transformers folder the exporter reads."""

from pathlib import Path

import pytest

from distill.embedding import EmbeddingConfig, distill_embeddings
from pocketbert.models import load_model

WIKI = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext2" / "valid.txt"


@pytest.mark.heavy  # a (tiny) training run
@pytest.mark.skipif(not WIKI.is_file(), reason="../shared/data absent")
def test_student_embedding_approaches_the_teacher_and_keeps_its_pooling(tmp_path):
    from tests.test_task_sentences import st_folder

    teacher = st_folder(tmp_path / "teacher", mode="cls", normalize=True)  # CLS: not the default pooling
    lines = [s for s in WIKI.read_text().splitlines() if s.strip() and not s.strip().startswith("=")][:200]
    text = tmp_path / "train.txt"
    text.write_text("\n".join(lines))
    m = distill_embeddings(EmbeddingConfig(teacher=str(teacher), train_file=str(text), out=str(tmp_path / "student"),
                                           heldout=32, max_len=48, batch_size=16, epochs=2, lr=3e-4))
    cos = m["heldout_cosine_to_teacher"]
    assert m["student_layers"] == [0] and m["steps"] == 22
    assert 1 - cos["after"] < 0.5 * (1 - cos["before"])  # the distance to the teacher at least halved
    assert m["final_loss"] < m["first_loss"]
    student = load_model(str(tmp_path / "student"), "feature-extraction")
    assert student.model_type == "distilbert" and student.model.config.n_layers == 1
    assert (student.pooling.mode, student.pooling.normalize) == ("cls", True)

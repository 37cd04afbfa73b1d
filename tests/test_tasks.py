"""The task registry (pocketbert/tasks/): each entry's head class, outputs and shapes checked on a
real tiny model, so a wrong fact in a task file fails here."""

import pytest
import torch

from pocketbert.common import UsageError
from pocketbert.models import load_model
from pocketbert.tasks import all_tasks, get_task, task_names

TASKS = sorted(all_tasks())


def test_an_unknown_task_lists_the_valid_ones():
    with pytest.raises(UsageError, match="unknown task 'ner': choose one of .*question-answering"):
        get_task("ner")
    with pytest.raises(UsageError, match="unknown task 'ner'"):
        load_model("bert-tiny", "ner")


@pytest.mark.parametrize("name", TASKS)
def test_task_entry_matches_the_model_it_builds(name):
    from pocketbert.wrapper import ExportWrapper

    task = get_task(name)
    loaded = load_model("bert-tiny", name)
    assert type(loaded.model).__name__.startswith("Bert")
    assert isinstance(loaded.model, task.head_class()._model_mapping[type(loaded.model.config)])
    ids = torch.randint(5, 200, (2, 10))  # (bs, seq)
    feeds = [ids, torch.ones_like(ids), torch.zeros_like(ids)]
    with torch.no_grad():
        outs = ExportWrapper(loaded.model, name, loaded.uses_token_type_ids)(*feeds)
    assert len(outs) == len(task.output_names) == len(loaded.output_names)
    assert [list(o.shape) for o in outs] == [task.output_shape(loaded.model.config, 2, 10)] * len(outs)
    assert all(o.dtype == torch.float32 for o in outs)
    assert bool(loaded.label_names) == task.labelled


def test_every_command_offers_the_registry_tasks():
    from distill.task import TASKS as DISTILL_TASKS
    from pocketbert.cli import build_parser

    parser = build_parser()
    for command in (["export", "--model", "bert-tiny"], ["bench"]):
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--task", "nope"])
    assert set(DISTILL_TASKS) == {m for t in all_tasks().values() for m in t.distill_modes}
    assert set(task_names()) >= {"question-answering", "sequence-classification", "fill-mask"}


@pytest.mark.parametrize("family", ["deberta-v2", "bert"])
def test_a_head_that_reads_the_pooler_keeps_it_and_only_embeddings_drop_it(family):
    """DeBERTa-v2's classifier reads its top-level ContextPooler: dropping every top-level pooler
    (right for sentence embeddings only) broke its forward and every export of it."""
    ids = torch.tensor([[1, 5, 6, 7, 2]])
    mask = torch.ones_like(ids)
    cls = load_model(f"{family}-tiny", "sequence-classification").model
    with torch.no_grad():
        assert cls(input_ids=ids, attention_mask=mask).logits.shape == (1, 2)
    emb = load_model(f"{family}-tiny", "feature-extraction").model
    assert getattr(emb, "pooler", None) is None

"""Distillation for every family whose layers can be copied: the student (a DistilBERT for bert and
distilbert teachers, the teacher's own architecture otherwise) starts as the teacher's chosen
layers, with the family's MLM head and input rules; ALBERT is refused in one line."""

import json

import pytest
import torch

from distill.student import build_student, load_teacher, mlm_head_logits
from pocketbert.common import UsageError
from pocketbert.families import families

COPYABLE = sorted(n for n, f in families().items() if not f.layer_copy)


def _inputs(tok, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 200, (2, 12), generator=g)  # (bs, seq)
    att = torch.ones_like(ids)
    att[1, 8:] = 0
    ids[1, 8:] = tok.pad_token_id
    return ids, att


@pytest.mark.parametrize("name", COPYABLE)
def test_a_full_copy_is_the_teacher_and_a_partial_copy_holds_the_chosen_layers(name):
    teacher = load_teacher(f"{name}-tiny")
    family = teacher.family
    ids, att = _inputs(teacher.tokenizer)
    keep = att.bool()
    student = build_student(teacher, list(range(teacher.num_layers)), dropout=0.0).eval()
    with torch.no_grad():
        t = teacher.model(input_ids=ids, attention_mask=att).logits  # (bs, seq, vocab)
        s = student(input_ids=ids, attention_mask=att).logits
        torch.testing.assert_close(s[keep], t[keep], atol=1e-4, rtol=0)
        h = student.base_model(input_ids=ids, attention_mask=att).last_hidden_state
        torch.testing.assert_close(mlm_head_logits(student, student.config.model_type, h[keep]), s[keep])

    if family.first_layer_kept:
        with pytest.raises(UsageError, match=f"^--student-layers 1: a {name} student must start with teacher layer 0 "):
            build_student(teacher, [1])
        return
    one = build_student(teacher, [1], dropout=0.0)
    assert one.config.num_hidden_layers == 1
    if family.distilbert_weights is None:  # same architecture: layer 0 of the student is teacher layer 1
        assert type(one) is type(teacher.model)
        got = family.layer_list(one)[0].state_dict()
        want = family.layer_list(teacher.model)[1].state_dict()
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
    assert one.get_output_embeddings().weight is one.get_input_embeddings().weight or name == "mobilebert"


@pytest.mark.parametrize("name", COPYABLE)
def test_one_triple_loss_step_trains_the_student(name):
    from distill.config import DistillConfig
    from distill.objective import StudentForward, compute_losses, teacher_forward

    teacher = load_teacher(f"{name}-tiny")
    student = build_student(teacher, [0], dropout=0.0)
    ids, att = _inputs(teacher.tokenizer)
    select = att.bool() & (torch.rand(ids.shape, generator=torch.Generator().manual_seed(0)) < 0.3)
    labels = torch.where(select, ids, torch.full_like(ids, -100))
    s_hidden, s_logits = StudentForward(student)(ids, att, select)
    t_hidden, t_logits = teacher_forward(teacher, ids, att, select)
    total, terms = compute_losses(DistillConfig(teacher=f"{name}-tiny"), s_hidden, s_logits, t_hidden, t_logits,
                                  labels[select], att)
    assert set(terms) >= {"ce", "mlm", "cos"} and all(v == v for v in terms.values())
    total.backward()
    assert all(p.grad is not None for p in student.base_model.embeddings.parameters() if p.requires_grad)


def test_albert_is_refused_in_one_line_before_any_work():
    with pytest.raises(UsageError, match=r"^cannot distill a albert teacher: ALBERT shares one set of layer "
                                         r"weights across all its layers: there are no separate layers to copy "
                                         r"into a student$"):
        load_teacher("albert-tiny")


def _pretrain_params():
    same = sorted(n for n in COPYABLE if families()[n].distilbert_weights is None)
    return [pytest.param(n, marks=() if n == "roberta" else pytest.mark.heavy) for n in same]


@pytest.mark.parametrize("name", _pretrain_params())
def test_distill_pretrain_end_to_end_keeps_the_family(name, tmp_path):
    """`distill pretrain` with a tiny teacher of the family: the saved student is that family with the
    copied layers, its tokenizer the teacher's, and `pocketbert export` loads it."""
    import random

    from distill.pretrain import DistillConfig, distill
    from pocketbert.models import _COMMON_WORDS, load_model

    rng = random.Random(0)
    text = tmp_path / "text.txt"
    text.write_text("".join(" ".join(rng.choice(_COMMON_WORDS) for _ in range(rng.randint(3, 30))) + "\n"
                            for _ in range(64)))
    out = tmp_path / "run"
    summary = distill(DistillConfig(teacher=f"{name}-tiny", data=[str(text)], out=str(out), batch_size=4,
                                    max_steps=3, save_every=3, log_every=1, max_len=32, progress=False))
    assert summary["mode"] == "triple" and summary["steps"] == 3
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss"] == r["loss"] and {"ce", "mlm", "cos"} <= set(r) for r in rows)
    loaded = load_model(str(out / "student"), "fill-mask")
    assert loaded.model_type == name and loaded.model.config.num_hidden_layers == 1
    assert loaded.tokenizer_kind == families()[name].tokenizer_kind
    assert loaded.tokenizer("the river")["input_ids"] == load_teacher(f"{name}-tiny").tokenizer("the river")["input_ids"]

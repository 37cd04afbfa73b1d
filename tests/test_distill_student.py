"""Student initialisation: the copied layers compute exactly what the teacher's did."""

import json

import pytest
import torch
from transformers import (BertConfig, BertForMaskedLM, BertModel, DistilBertConfig,
                          DistilBertForMaskedLM)

from distill.student import (Teacher, build_student, default_layer_map, load_teacher,
                             mlm_head_logits, parse_layers, student_encoder)
from pocketbert.common import UsageError

TINY = dict(vocab_size=120, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0)


def _bert_teacher(head=True, seed=0):
    torch.manual_seed(seed)
    model = (BertForMaskedLM if head else BertModel)(BertConfig(**TINY)).eval()
    with torch.no_grad():  # non-trivial LayerNorms / biases / token-type embedding 0
        for n, p in model.named_parameters():
            if "LayerNorm" in n or n.endswith("bias") or "token_type" in n:
                p.add_(torch.randn_like(p) * 0.1)
    return Teacher(model, None, "bert", head, "test")


def _inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (3, 12), generator=g)  # (bs, seq)
    att = torch.ones_like(ids)
    att[1, 8:] = 0
    att[2, 5:] = 0
    return ids, att


def test_copied_layers_compute_what_the_teachers_did():
    """Student with layers 0,2,3 == the teacher running only its layers 0,2,3, at every layer."""
    import copy

    teacher = _bert_teacher()
    layers = [0, 2, 3]
    student = build_student(teacher, layers, dropout=0.0).eval()
    pruned = copy.deepcopy(teacher.model)
    pruned.bert.encoder.layer = torch.nn.ModuleList([pruned.bert.encoder.layer[i] for i in layers])
    pruned.config.num_hidden_layers = len(layers)
    ids, att = _inputs()
    keep = att.bool()
    with torch.no_grad():
        t = pruned.bert(input_ids=ids, attention_mask=att, output_hidden_states=True)
        s = student.distilbert(input_ids=ids, attention_mask=att, output_hidden_states=True)
        assert len(s.hidden_states) == len(t.hidden_states) == 4
        for j in range(4):  # embeddings (token-type 0 folded into positions), then each layer
            torch.testing.assert_close(s.hidden_states[j][keep], t.hidden_states[j][keep],
                                       atol=1e-5, rtol=0)
        full = teacher.model.bert(input_ids=ids, attention_mask=att, output_hidden_states=True)
        torch.testing.assert_close(s.hidden_states[1][keep], full.hidden_states[1][keep],
                                   atol=1e-5, rtol=0)  # layer 0 sees the same input in both


def test_full_copy_reproduces_teacher_outputs_and_mlm_logits():
    teacher = _bert_teacher()
    student = build_student(teacher, [0, 1, 2, 3], dropout=0.0).eval()
    ids, att = _inputs()
    keep = att.bool()
    with torch.no_grad():
        t_logits = teacher.model(input_ids=ids, attention_mask=att).logits  # (bs, seq, vocab)
        s_logits = student(input_ids=ids, attention_mask=att).logits  # (bs, seq, vocab)
        torch.testing.assert_close(s_logits[keep], t_logits[keep], atol=1e-4, rtol=0)
        h = student.distilbert(input_ids=ids, attention_mask=att).last_hidden_state
        torch.testing.assert_close(mlm_head_logits(student, "distilbert", h[keep]), s_logits[keep])
        torch.testing.assert_close(mlm_head_logits(teacher.model, "bert", h[keep]),
                                   s_logits[keep], atol=1e-4, rtol=0)
    assert student.vocab_projector.weight.data_ptr() == \
        student.distilbert.embeddings.word_embeddings.weight.data_ptr()  # tied


def test_distilbert_teacher_copied_directly():
    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=120, dim=32, n_layers=4, n_heads=4, hidden_dim=64,
                           max_position_embeddings=64, dropout=0.0, attention_dropout=0.0)
    t = Teacher(DistilBertForMaskedLM(cfg).eval(), None, "distilbert", True, "test")
    student = build_student(t, [0, 1, 2, 3], dropout=0.0).eval()
    ids, att = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(student(input_ids=ids, attention_mask=att).logits,
                                   t.model(input_ids=ids, attention_mask=att).logits)
    assert student.config.n_layers == 4
    half = build_student(t, default_layer_map(4))
    assert half.config.n_layers == 2
    torch.testing.assert_close(half.distilbert.transformer.layer[1].ffn.lin1.weight,
                               t.model.distilbert.transformer.layer[2].ffn.lin1.weight)


def test_random_init_and_mlmless_teacher():
    teacher = _bert_teacher(head=False)
    student = build_student(teacher, [0, 2])
    assert type(student).__name__ == "DistilBertModel" and student_encoder(student) is student
    rand = build_student(teacher, [0, 2], copy=False)
    assert not torch.equal(rand.embeddings.word_embeddings.weight,
                           teacher.model.embeddings.word_embeddings.weight)


def test_layer_maps_and_errors():
    assert default_layer_map(12) == [0, 2, 4, 7, 9, 11]
    assert default_layer_map(6) == [0, 2, 4]
    assert parse_layers(None, 12) == [0, 2, 4, 7, 9, 11]
    assert parse_layers("reference", 12) == [0, 2, 4, 7, 9, 11]
    assert parse_layers("every-other", 12) == [0, 2, 4, 6, 8, 10]
    assert parse_layers("0,2,4", 6) == [0, 2, 4]
    for bad, msg in [("0,6", "out of range"), ("-1", "out of range"), ("2,1", "increasing"),
                     ("0,1,2,3,4,5,6", "bigger than its"), ("a,b", "integers"), (",", "empty")]:
        with pytest.raises(UsageError, match=msg):
            parse_layers(bad, 6)


def test_load_teacher_folders(tmp_path):
    t = _bert_teacher(head=False)
    t.model.save_pretrained(tmp_path / "enc")
    (tmp_path / "enc" / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                                                          + [f"w{i}" for i in range(115)]) + "\n")
    loaded = load_teacher(str(tmp_path / "enc"))
    assert not loaded.has_mlm_head and loaded.num_layers == 4
    assert all(not p.requires_grad for p in loaded.model.parameters())
    mlm = _bert_teacher(head=True)
    mlm.model.save_pretrained(tmp_path / "mlm")
    (tmp_path / "mlm" / "vocab.txt").write_text((tmp_path / "enc" / "vocab.txt").read_text())
    assert load_teacher(str(tmp_path / "mlm")).has_mlm_head
    (tmp_path / "gpt").mkdir()
    (tmp_path / "gpt" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(UsageError, match="is a 'gpt2' model: pocketbert supports .*bert"):
        load_teacher(str(tmp_path / "gpt"))
    with pytest.raises(UsageError, match="not found"):
        load_teacher(str(tmp_path / "missing"))

"""The model-family registry (pocketbert/families/): every entry checked against the real
transformers model of its tiny config, so a wrong fact in a family file fails here."""

import pytest
import torch

from pocketbert.common import UsageError
from pocketbert.families import TOKENIZER_KINDS, families, family_of, model_types
from pocketbert.models import PRESETS, build_preset, load_model

FAMILIES = sorted(families())


def test_an_unknown_model_type_is_one_line_naming_the_supported_ones():
    with pytest.raises(UsageError) as e:
        family_of("gpt2", "folder x")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("folder x is a 'gpt2' model: pocketbert supports ")
    assert all(name in msg for name in model_types())
    with pytest.raises(UsageError, match="unknown model type 'nope': pocketbert supports albert, bert, "):
        family_of("nope")


def test_every_family_has_a_tiny_preset():
    for name in FAMILIES:
        assert PRESETS[f"{name}-tiny"]["model_type"] == name


def _inputs(loaded, pad: int = 3):
    """Two rows of token ids, the second right-padded by `pad` (attention 0 there)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 200, (2, 12), generator=g)  # (bs, seq)
    mask = torch.ones_like(ids)
    mask[1, -pad:] = 0
    ids[1, -pad:] = loaded.tokenizer.pad_token_id
    feeds = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in loaded.input_names:
        feeds["token_type_ids"] = torch.cat([torch.zeros(2, 6), torch.ones(2, 6)], 1).long()
    return feeds


@pytest.mark.parametrize("name", FAMILIES)
def test_family_entry_matches_its_transformers_model(name):
    """Input names, MLM head, head keys, layer list and the export wrapper's mask rule of one family."""
    from pocketbert.wrapper import ExportWrapper

    family = family_of(name)
    assert family.tokenizer_kind in TOKENIZER_KINDS
    loaded = load_model(f"{name}-tiny", "fill-mask")
    model, config = loaded.model, loaded.model.config
    assert config.model_type == name and loaded.family is family

    # token_type_ids are fed exactly when the model has segment embeddings
    has_segments = any("token_type" in n for n, _ in model.named_parameters())
    assert ("token_type_ids" in loaded.input_names) == (has_segments and config.type_vocab_size > 1)

    # the family's MLM head is the model's own: same logits from the encoder's hidden states
    feeds = _inputs(loaded)
    with torch.no_grad():
        out = model(**feeds, output_hidden_states=True)
        hidden = out.hidden_states[-1]  # (bs, seq, dim)
        keep = feeds["attention_mask"].bool()
        torch.testing.assert_close(family.mlm_logits(model, hidden[keep]), out.logits[keep])

    # its MLM head weights all carry the family's head prefixes (a checkpoint with a head is recognised)
    base = {id(p) for p in model.base_model.parameters()}
    head = [n for n, p in model.named_parameters() if id(p) not in base]
    assert head and all(n.startswith(family.mlm_head_keys) for n in head), head

    # the layer list is where the family says, one entry per layer
    if not family.layer_copy:
        assert len(family.layer_list(model)) == family.num_layers(config)

    # the export wrapper (its additive 4-D mask) computes what the model computes from the 2-D mask
    wrapper = ExportWrapper(model, "fill-mask", loaded.uses_token_type_ids)
    with torch.no_grad():
        got = wrapper(*(feeds[n] for n in loaded.input_names))[0]
    torch.testing.assert_close(got[keep], out.logits[keep], atol=1e-4, rtol=1e-4)


LIMITS = [(n, k) for n, f in families().items() for k in f.limits]


@pytest.mark.parametrize("name,limit", LIMITS)
def test_every_measured_limit_refuses_its_cells_in_one_line_before_loading(name, limit, tmp_path, monkeypatch):
    from export.pipeline import ExportConfig, run_export
    from export.targets import get_target

    target, _, precision = limit.partition("/")
    precision = precision or get_target(target).precisions[0]
    monkeypatch.setattr("export.pipeline.load_model", lambda *a, **k: pytest.fail("loaded before refusing"))
    cfg = ExportConfig(model=f"{name}-tiny", targets=[target], precisions=[precision], out=str(tmp_path / "o"))
    with pytest.raises(UsageError) as e:
        run_export(cfg, log=lambda *_: None)
    assert str(e.value) == f"{name} models cannot be exported to {target} {precision}: {families()[name].limits[limit]}"
    assert "\n" not in str(e.value) and not (tmp_path / "o").exists()


def test_a_family_that_cannot_export_a_cell_says_why_before_any_work(monkeypatch, tmp_path):
    from export.pipeline import ExportConfig, run_export
    from pocketbert.families import REGISTRY

    family = family_of("distilbert")
    broken = type(family)(**{**family.__dict__, "limits": {"onnx/int8": "no int8 kernel for X"}})
    monkeypatch.setitem(REGISTRY.records, "distilbert", broken)
    cfg = ExportConfig(model="distilbert-tiny", targets=["onnx"], precisions=["int8"], out=str(tmp_path / "o"))
    with pytest.raises(UsageError, match="^distilbert models cannot be exported to onnx int8: no int8 kernel for X$"):
        run_export(cfg, log=lambda *_: pytest.fail("work started before the refusal"))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", FAMILIES)
def test_preset_tokenizer_is_the_family_kind_with_the_config_special_ids(name):
    """The tiny preset's tokenizer is trained offline in the family's own algorithm (WordPiece, BPE,
    Unigram SentencePiece) and its pad/cls/sep ids are the ones the tiny config uses."""
    family = family_of(name)
    loaded = load_model(f"{name}-tiny", "question-answering")
    tok, config = loaded.tokenizer, loaded.model.config
    model = type(tok.backend_tokenizer.model).__name__
    assert model == {"wordpiece": "WordPiece", "bpe": "BPE", "sentencepiece": "Unigram"}[family.tokenizer_kind]
    assert tok.pad_token_id == config.pad_token_id
    enc = tok("what is the river?", "the river is north of the city.")
    assert tok.unk_token_id not in enc["input_ids"]
    assert enc["input_ids"][0] == tok.cls_token_id and enc["input_ids"][-1] == tok.sep_token_id
    assert set(enc) >= set(loaded.input_names)
    if "token_type_ids" in loaded.input_names:
        assert enc["token_type_ids"][-1] == 1  # the second segment is type 1
    assert max(enc["input_ids"]) < config.vocab_size


@pytest.mark.parametrize("alias", sorted(set(model_types()) - set(FAMILIES)))
def test_an_alias_runs_its_family_code(alias):
    """A model type transformers runs with a family's code resolves to that family, and the
    family's MLM head and layer list fit it."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    family = family_of(alias)
    assert family.name != alias
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_config(AutoConfig.for_model(alias, **family.tiny)).eval()
    ids = torch.randint(5, 200, (1, 8))
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
        torch.testing.assert_close(family.mlm_logits(model, out.hidden_states[-1]), out.logits)
    assert len(family.layer_list(model)) == family.num_layers(model.config)


def test_bench_tokenizes_a_preset_with_its_family_tokenizer():
    from bench.prepare import tokenizer_for

    tok = tokenizer_for("roberta-tiny", None, [])
    assert type(tok.backend_tokenizer.model).__name__ == "BPE" and tok.pad_token_id == 1

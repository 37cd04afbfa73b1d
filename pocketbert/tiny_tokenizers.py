"""Tokenizers for the `<family>-tiny` presets, built offline and deterministically, of the family's
own kind: byte-level BPE (RoBERTa, ModernBERT) and SentencePiece-style Unigram (XLM-R, ALBERT,
DeBERTa-v2) are trained with the `tokenizers` library on generated sentences of common English
words; WordPiece families use the generated vocabulary of pocketbert.models. Never a real
vocabulary: presets time and export like the real model, they do not read like it.
"""

from __future__ import annotations

import string

from pocketbert.families import Family


def training_text(words: list[str], n: int = 400, seed: int = 0) -> list[str]:
    """Sentences of `words` plus every printable ASCII character (so nothing is unknown)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = [" ".join(rng.choice(words, size=int(rng.integers(4, 16)))) + "." for _ in range(n)]
    return lines + [" ".join(string.printable.strip())] * 3


def build_tokenizer(family: Family, vocab_size: int, words: list[str]):
    """A fast tokenizer of `family`'s kind with its special tokens at the ids its tiny config uses."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    spec = family.tiny_tokenizer
    specials = list(spec.specials)
    if family.tokenizer_kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    elif family.tokenizer_kind == "sentencepiece":
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.Sequence([normalizers.NFKC()] + ([normalizers.Lowercase()] if spec.lowercase else []))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=spec.unk,
                                          initial_alphabet=list(string.printable.strip()), show_progress=False)
    else:
        raise ValueError(f"{family.name}: a {family.tokenizer_kind} tiny tokenizer is the generated vocabulary")
    tok.train_from_iterator(training_text(words), trainer)
    cls, sep = (spec.cls, tok.token_to_id(spec.cls)), (spec.sep, tok.token_to_id(spec.sep))
    middle = f"{spec.sep} " if spec.double_sep else ""  # RoBERTa-style pairs: <s> A </s></s> B </s>
    types = ":1" if family.token_type_ids else ""
    template = processors.TemplateProcessing(single=f"{spec.cls} $A {spec.sep}",
                                             pair=f"{spec.cls} $A {spec.sep} {middle}$B{types} {spec.sep}{types}",
                                             special_tokens=[cls, sep])
    tok.post_processor = (processors.Sequence([processors.ByteLevel(trim_offsets=True), template])
                          if family.tokenizer_kind == "bpe" else template)
    inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if family.token_type_ids else [])
    return PreTrainedTokenizerFast(tokenizer_object=tok, cls_token=spec.cls, sep_token=spec.sep,
                                   bos_token=spec.cls, eos_token=spec.sep, pad_token=spec.pad,
                                   unk_token=spec.unk, mask_token=spec.mask, model_input_names=inputs,
                                   do_lower_case=spec.lowercase)

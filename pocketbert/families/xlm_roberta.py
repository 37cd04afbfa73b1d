"""XLM-RoBERTa (Conneau et al.): RoBERTa's architecture (transformers' code is a copy) with a
SentencePiece vocabulary; CamemBERT is the same (RoBERTa + SentencePiece)."""

import dataclasses

from pocketbert.families import register
from pocketbert.families.roberta import ROBERTA

register(dataclasses.replace(ROBERTA, name="xlm-roberta", aliases=("camembert",), tokenizer_kind="sentencepiece"))

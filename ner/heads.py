"""Token-classification heads: named, swappable parts of the model (`model.head`).

A head maps the encoder's hidden states (batch, tokens, hidden; after the model's dropout) to
label logits (batch, tokens, labels). `linear`, the default, keeps the stock classifier of
transformers' XLMRobertaForTokenClassification, so an export loads anywhere
(AutoModelForTokenClassification, pipeline). A new head is one entry in HEADS, a function of the
model's config that returns the module: it replaces `model.classifier`, and the export records
its name (`config.ner_head`) so that ner-evaluate and ner-predict rebuild it.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from transformers import PretrainedConfig

from ner.errors import UserError

# name -> the head's module for a model config; None keeps the model's own linear classifier.
HEADS: dict[str, Callable[[PretrainedConfig], nn.Module] | None] = {"linear": None}


def require(name: str) -> None:
    """Refuse a head that is not in HEADS, in one line: the config check (ner/run/checks.py, before
    any work) and `attach` (an export made by a process that knew more heads) both ask here."""
    if name not in HEADS:
        raise UserError(f"model: head '{name}' is not in ner/heads.py HEADS ({', '.join(HEADS)})")


def attach(model: nn.Module, name: str) -> nn.Module:
    """Give `model` the head `name` (and record it in its config)."""
    require(name)
    make = HEADS[name]
    if make is not None:
        model.classifier = make(model.config)
        model.config.ner_head = name
    return model

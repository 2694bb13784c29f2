"""How a config key is declared (ner/config.py holds the keys): its one default with the bounds
ner/run/checks.py holds it to (`key`), whether it may change on resume (`operational`), a
default that follows the model the run trains (`recipe`), and the fixed sets of values
(`Choice`: Hydra refuses any other at composition).
"""

from __future__ import annotations

from dataclasses import field
from enum import Enum
from typing import Any

from ner.data.checks import ON_ERROR_CHOICES


def key(
    default: Any,
    *,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    operational: bool = False,
    **meta: Any,
) -> Any:
    """A key with its default and the bounds `check` holds its value to (null passes)."""
    bounds = {"at_least": at_least, "above": above, "below": below}
    meta.update(operational=operational, **{k: v for k, v in bounds.items() if v is not None})
    return field(default=default, metadata=meta)


def recipe(pretrained: float, tiny: float, **bounds: float) -> Any:
    """A key of the training recipe, whose default follows the model the run trains:
    `pretrained` when model.name_or_path names a pretrained encoder, `tiny` when it is null (the
    tiny random-init model). It is resolved when read, so no group or key can hand one model the
    other's tuning; a value set by an experiment or on the command line replaces it."""
    default = f"${{ner_recipe:{pretrained!r},{tiny!r}}}"
    return key(default, recipe={"pretrained": pretrained, "tiny": tiny}, **bounds)


def operational(default: Any, **bounds: float) -> Any:
    """A key that does not change what a run computes: it may differ when the run resumes."""
    return key(default, operational=True, **bounds)


class Choice(str, Enum):
    """A value from a fixed set. Hydra refuses any other value when it composes the config; the
    value compares and prints as its plain string."""

    def __str__(self) -> str:
        return self.value


Precision = Choice("Precision", {v: v for v in ("fp32", "bf16", "fp16")})
Device = Choice("Device", {v: v for v in ("auto", "cpu", "cuda")})
Strategy = Choice("Strategy", {v: v for v in ("ddp", "fsdp")})
MonitorMode = Choice("MonitorMode", {v: v for v in ("max", "min")})
OnError = Choice("OnError", {v: v for v in ON_ERROR_CHOICES})  # `raise` is a keyword
KeepCheckpoints = Choice("KeepCheckpoints", {v: v for v in ("all", "best", "none")})
Schedule = Choice(
    "Schedule",
    {
        v: v
        for v in (  # transformers' names (ner/optimization.py)
            "linear",
            "cosine",
            "cosine_with_restarts",
            "polynomial",
            "constant",
            "constant_with_warmup",
            "inverse_sqrt",
        )
    },
)

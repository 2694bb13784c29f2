"""The memory estimate printed at start (ner/memory.py) against a hand count, and its refusal.

The model: XLM-R with hidden 4, intermediate 6, 2 layers, vocabulary 11, 9 positions, 3 labels.
  a layer: query/key/value/output 4 x (4x4 + 4) = 80, two LayerNorms 2 x 8 = 16,
           intermediate 6x4 + 6 = 30, output 4x6 + 4 = 28                       -> 154
  the root: embeddings 11x4 + 1x4 + 9x4 + LayerNorm 8 = 92, classifier 3x4 + 3 = 15 -> 107
  in all 107 + 2 x 154 = 415; in nn.Linear modules 2 x (80 + 30 + 28) + 15 = 291.
FSDP2's shard on 2 ranks (dim 0 split, ceil(rows / 2) rows on rank 0): a layer 77 (every
dim 0 even), the root: word 6x4 + token type 1x4 + positions 5x4 + LayerNorm 2 + 2 + classifier
2x4 + 2 = 62; in all 62 + 2 x 77 = 216.
"""

from __future__ import annotations

import pytest
from conftest import QUICK, compose
from transformers import XLMRobertaConfig, XLMRobertaXLConfig

from ner import memory
from ner.errors import UserError
from ner.model import build_model, encoder_family

SHAPE = dict(
    vocab_size=11,
    hidden_size=4,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=6,
    max_position_embeddings=9,
    type_vocab_size=1,
    num_labels=3,
)


def parts(model_overrides: list[str], strategy: str, world_size: int, precision: str) -> dict:
    cfg = compose([*QUICK, *model_overrides])
    model = memory.skeleton(cfg.model, XLMRobertaConfig(**SHAPE))
    return memory.estimate(model, strategy, world_size, precision).parts


def test_ddp_holds_everything_on_every_rank():
    assert parts([], "ddp", 2, "fp32") == {
        "parameters": 4 * 415,
        "gradients": 4 * 415,
        "optimizer state": 8 * 415,  # AdamW's two fp32 moments
        "DDP buckets": 4 * 415,  # a second copy of the gradients
        "autocast weights": 0,
    }
    one = parts([], "ddp", 1, "bf16")  # one process: no DDP; bf16 copies of the Linear weights
    assert (one["DDP buckets"], one["autocast weights"]) == (0, 2 * 291)


def test_fsdp_divides_the_state_by_the_ranks_and_gathers_one_unit():
    assert parts([], "fsdp", 2, "fp32") == {
        "parameters": 4 * 216,
        "gradients": 4 * 216,
        "optimizer state": 8 * 216,
        "gathered unit": 4 * 2 * 154,  # the largest unit (a layer): parameters and gradient
    }
    assert parts([], "fsdp", 2, "bf16")["gathered unit"] == 2 * 2 * 154


def test_frozen_parameters_have_no_gradient_or_optimizer_state():
    frozen = ["model.freeze_embeddings=true", "model.freeze_layers=1"]  # 92 + 154 frozen
    trainable = 15 + 154
    assert parts(frozen, "ddp", 2, "fp32") == {
        "parameters": 4 * 415,
        "gradients": 4 * trainable,
        "optimizer state": 8 * trainable,
        "DDP buckets": 4 * trainable,
        "autocast weights": 0,
    }
    shard = 10 + 77  # the classifier's shard and layer 2's
    assert parts(frozen, "fsdp", 2, "fp32") == {
        "parameters": 4 * 216,
        "gradients": 4 * shard,
        "optimizer state": 8 * shard,
        "gathered unit": 4 * 2 * 154,  # layer 2 (layer 1 has no gradient: 154)
    }


def test_the_meta_skeleton_counts_what_the_real_model_holds():
    cfg = compose([*QUICK, "model.freeze_layers=1"])
    real = build_model(cfg.model, XLMRobertaConfig(**SHAPE), seed=0, pretrained=False)
    ghost = memory.skeleton(cfg.model, XLMRobertaConfig(**SHAPE))
    assert {p.device.type for p in ghost.parameters()} == {"meta"}
    for strategy in ("ddp", "fsdp"):
        assert memory.estimate(real, strategy, 3, "bf16") == memory.estimate(
            ghost, strategy, 3, "bf16"
        )


def test_xlm_roberta_xl_is_counted_without_the_hub():
    # facebook/xlm-roberta-xl's family (pre-LayerNorm, its own classes), tiny and random.
    cfg = compose([*QUICK, "model.name_or_path=facebook/xlm-roberta-xl", "model.freeze_layers=1"])
    architecture = XLMRobertaXLConfig(**SHAPE)
    model = memory.skeleton(cfg.model, architecture)  # pretrained=False: nothing downloaded
    assert type(model).__name__ == "XLMRobertaXLForTokenClassification"
    assert encoder_family(architecture) == "XLM-RoBERTa-XL"
    n = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < trainable < n  # layer 1 frozen
    est = memory.estimate(model, "ddp", 1, "fp32")
    assert est.parts["parameters"] == 4 * n and est.parts["optimizer state"] == 8 * trainable


def test_the_start_line_and_the_refusal():
    architecture = XLMRobertaConfig(**SHAPE)
    line = memory.check(compose([*QUICK, "trainer.strategy=ddp"]), architecture, 2)
    assert line == (
        "memory per rank (ddp, 2 ranks, fp32; activations not counted): parameters 1.62 KiB, "
        "gradients 1.62 KiB, optimizer state 3.24 KiB, DDP buckets 1.62 KiB = 8.11 KiB"
    )
    # 8300 bytes under ddp, 3456 + 1232 = 4688 under fsdp on 2 ranks.
    limit = 6000 / memory.GIB
    over = compose([*QUICK, "trainer.strategy=ddp", f"trainer.device_memory_gib={limit}"])
    with pytest.raises(UserError) as refused:
        memory.check(over, architecture, 2)
    text = str(refused.value)
    assert "\n" not in text
    assert text.startswith(f"config: trainer.device_memory_gib={limit}: the model's state needs")
    assert "under ddp on 2 rank(s) before activations" in text
    assert text.endswith("trainer.strategy=fsdp needs 4.58 KiB (fits)")  # 4688 bytes
    fsdp = compose([*QUICK, "trainer.strategy=fsdp", f"trainer.device_memory_gib={limit}"])
    assert memory.check(fsdp, architecture, 2).startswith("memory per rank (fsdp, 2 ranks")
    with pytest.raises(UserError, match="add ranks under fsdp"):
        memory.check(fsdp, architecture, 1)  # one rank: trained whole, 415 x 16 > 6000

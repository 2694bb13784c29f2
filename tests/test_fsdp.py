"""trainer.strategy=fsdp (ner/sharding.py): FSDP2 on 2 processes (gloo) equals DDP on 2 and one
process at double batch, with accumulation, clipping, frozen layers, layer decay and an uneven
evaluation set; its export loads in a pipeline. Two torchrun jobs and one in-process run, shared
by the tests of the module (`runs`)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import CONF, QUICK, eval_entries, torchrun, train_in_process
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

from ner.distributed import Env
from ner.run.precheck import precheck

# its module-scoped fixture built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("fsdp")

# Dropout off (ranks draw their own masks), logs at every step. Three layers: the lowest frozen
# with the embeddings (frozen beside the trainable head in the root's FSDP group), the other two
# at lr * 0.8 and lr (layer decay), the head at its own lr, weight decay off biases and norm
# weights, a clipping norm the gradients exceed, two micro-batches a step (global batch 8). 61 validation and test windows at evaluation batch
# 5: rank 0 has 31 of them, 7 batches, rank 1 30, 6 batches (the sharded forward passes must line
# up), and each window is scored once.
ARGS = [
    *QUICK,
    "model.dropout=0.0",
    "trainer.log_every=1",
    "trainer.eval_batch_size=5",
    "trainer.grad_accum_steps=2",
    "model.num_layers=3",
    "model.freeze_layers=1",
    "model.freeze_embeddings=true",
    "optim.layer_decay=0.8",
    "optim.head_lr=1e-2",
    "optim.weight_decay=0.01",
    "optim.max_grad_norm=0.5",
]
EVAL_KEYS = ("eval_loss", "eval_precision", "eval_recall", "eval_f1", "eval_accuracy")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """fsdp and ddp on 2 processes at batch 2, one process at batch 4: {name: (run directory,
    stdout)}. (A resume under fsdp is tested with its checkpoints.)"""
    root = tmp_path_factory.mktemp("fsdp")
    out = {}
    for strategy in ("fsdp", "ddp"):
        args = [*ARGS, "trainer.batch_size=2", f"trainer.strategy={strategy}"]
        job = torchrun(2, [*args, f"hydra.run.dir={root}/{strategy}"], root)
        assert job.returncode == 0, job.stderr[-3000:]
        out[strategy] = (root / strategy, job.stdout)
    train_in_process(root / "one", [*ARGS, "trainer.batch_size=4"])
    out["one"] = (root / "one", "")
    return out


def history(run: Path) -> list[dict]:
    return json.loads((run / "log_history.json").read_text())


def whole(path: Path) -> dict:
    """A checkpoint as a ddp run's holds it: an fsdp last.pt's shards (ner/sharded_checkpoint.py)
    consolidated by DCP, its optimizer's parameters numbered in the order of its groups."""
    ckpt = torch.load(path, weights_only=True)
    if "shards" not in ckpt:
        return ckpt
    with tempfile.TemporaryDirectory() as tmp:
        dcp_to_torch_save(path.parent / ckpt["shards"], Path(tmp) / "whole.pt")
        shards = torch.load(Path(tmp) / "whole.pt", weights_only=True)
    groups = shards["optimizer"]["param_groups"]
    number = {name: i for i, name in enumerate(n for g in groups for n in g["params"])}
    optimizer = {
        "state": {number[n]: s for n, s in shards["optimizer"]["state"].items()},
        "param_groups": [{**g, "params": [number[n] for n in g["params"]]} for g in groups],
    }
    return {**ckpt, "model": shards["model"], "optimizer": optimizer}


def weights(path: Path) -> dict[str, torch.Tensor]:
    return whole(path)["model"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if k.endswith("attention.self.key.bias"):
            continue  # a true gradient of 0: rounding noise that Adam scales (tests/test_distributed.py)
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)


@pytest.mark.slow
def test_fsdp_on_two_processes_equals_ddp_on_two_and_one_process_at_double_batch(runs):
    fsdp, says = runs["fsdp"]
    assert "fsdp: parameters, gradients and optimizer state sharded over 2 ranks" in says
    assert "world size 2 x per-rank batch 2 x accumulation 2 = global batch 8" in says
    assert "M of them frozen" in says
    for twin in ("ddp", "one"):
        other = runs[twin][0]
        a, b = history(fsdp), history(other)
        losses = [[e["loss"] for e in h if "learning_rate" in e] for h in (a, b)]
        assert len(losses[0]) == 60
        assert eval_entries(a)[-1]["eval_f1"] > 0  # it learns: the metrics say something
        assert losses[0] == pytest.approx(losses[1], abs=1e-6), twin
        for x, y in zip(eval_entries(a), eval_entries(b), strict=True):
            for key in (*EVAL_KEYS, "train_loss"):
                assert x[key] == pytest.approx(y[key], abs=1e-6), (twin, key)
        test = [json.loads((r / "result.json").read_text())["test"] for r in (fsdp, other)]
        for key in ("test_loss", "test_precision", "test_recall", "test_f1", "test_accuracy"):
            assert test[0][key] == pytest.approx(test[1][key], abs=1e-6), (twin, key)
        for name in ("last.pt", "best.pt"):
            assert_same_weights(
                weights(fsdp / "checkpoints" / name), weights(other / "checkpoints" / name)
            )
    # The checkpoint, read whole, is a ddp run's: the same keys, shapes and optimizer layout.
    ddp = runs["ddp"][0]
    a, b = (whole(r / "checkpoints/last.pt") for r in (fsdp, ddp))
    assert [len(g["params"]) for g in a["optimizer"]["param_groups"]] == [
        len(g["params"]) for g in b["optimizer"]["param_groups"]
    ]
    for i, state in b["optimizer"]["state"].items():
        for k, v in state.items():
            torch.testing.assert_close(a["optimizer"]["state"][i][k], v, rtol=0, atol=1e-6)
    card = (fsdp / "README.md").read_text()
    assert "- distributed_strategy: fsdp" in card
    assert "distributed_strategy" not in (ddp / "README.md").read_text()


@pytest.mark.slow
def test_the_fsdp_export_is_a_plain_hugging_face_model_that_a_pipeline_loads(runs):
    from safetensors.torch import load_file
    from transformers import pipeline

    fsdp, ddp = runs["fsdp"][0], runs["ddp"][0]
    assert_same_weights(
        load_file(fsdp / "best_model/model.safetensors"),
        load_file(ddp / "best_model/model.safetensors"),
    )
    tagger = pipeline("token-classification", model=str(fsdp / "best_model"))
    twin = pipeline("token-classification", model=str(ddp / "best_model"))
    sentence = "דני כהן נסע לירושלים עם בנק הפועלים"
    assert [t["entity"] for t in tagger(sentence)] == [t["entity"] for t in twin(sentence)]


def test_fsdp_with_fp16_is_refused_in_one_line():
    assert precheck(["trainer.strategy=fsdp", "trainer.precision=fp16"], str(CONF)) == (
        "config: trainer.strategy=fsdp trains in fp32 or bf16, not trainer.precision=fp16 (its "
        "loss scaling is not built for sharded gradients); use trainer.precision=bf16"
    )
    assert precheck(["trainer.strategy=fsdp", "trainer.precision=bf16"], str(CONF)) is None


def test_the_bf16_policy_computes_in_bf16_and_reduces_in_fp32():
    from ner.sharding import described, policy

    assert policy("bf16").param_dtype == torch.bfloat16
    assert policy("bf16").reduce_dtype == torch.float32
    assert policy("fp32").param_dtype is None and policy("fp32").reduce_dtype is None
    assert described("ddp", Env(world_size=2)) == ""
    assert "nothing to shard" in described("fsdp", Env())


def test_on_one_process_fsdp_trains_the_model_whole():
    from ner.sharding import is_sharded, shard

    model = torch.nn.Linear(3, 2)
    assert shard(model, Env(), "fp32") is model and not is_sharded(model)

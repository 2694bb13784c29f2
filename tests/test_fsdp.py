"""trainer.strategy=fsdp (ner/sharding.py): FSDP2 on 2 processes (gloo) equals DDP on 2 and one
process at double batch, with accumulation, clipping, frozen layers, layer decay and an uneven
evaluation set; its export loads in a pipeline. Its sharded checkpoints (ner/sharded_checkpoint.py):
the fsdp run cut mid-epoch resumes to the metrics of the run never stopped, on its 2 processes
and on 1 (DCP reshards). Three torchrun jobs and one in-process run, shared by the tests of the
module (`runs`)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import CONF, QUICK, eval_entries, torchrun, train_in_process
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

from ner import atomic
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
    "trainer.save_every_steps=15",
]
# 30 steps an epoch at global batch 8, a step checkpoint every 15 (step-N.pt, pruned to one);
# the cut run stops at step CUT, in the middle of epoch 2, and is resumed.
CUT = 45
EVAL_KEYS = ("eval_loss", "eval_precision", "eval_recall", "eval_f1", "eval_accuracy")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """fsdp and ddp on 2 processes at batch 2, one process at batch 4, and an fsdp run cut at step
    CUT (a copy of it to resume on one process): {name: (run directory, stdout)}. The fsdp run
    is the one never stopped that the cut run's resumes must end as."""
    root = tmp_path_factory.mktemp("fsdp")
    out = {}
    for name, extra in (("fsdp", []), ("ddp", []), ("cut", [f"trainer.stop_after_steps={CUT}"])):
        strategy = "ddp" if name == "ddp" else "fsdp"
        args = [*ARGS, "trainer.batch_size=2", f"trainer.strategy={strategy}", *extra]
        job = torchrun(2, [*args, f"hydra.run.dir={root}/{name}"], root)
        assert job.returncode == 0, job.stderr[-3000:]
        out[name] = (root / name, job.stdout)
    train_in_process(root / "one", [*ARGS, "trainer.batch_size=4"])
    out["one"] = (root / "one", "")
    shutil.copytree(root / "cut", root / "cut-on-one", symlinks=True)
    out["cut-on-one"] = (root / "cut-on-one", "")
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


def numbers(entry: dict, prefix: str = "") -> dict[str, float]:
    """An entry's numbers by their path (eval_per_type/LOC/f1), timing left out."""
    out = {}
    for k, v in entry.items():
        if "runtime" in k or "per_second" in k:
            continue
        if isinstance(v, dict):
            out.update(numbers(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)):
            out[f"{prefix}{k}"] = v
    return out


def scores(run: Path) -> tuple[list[dict], dict]:
    """The run's evaluations and its final entry, as numbers."""
    history = json.loads((run / "log_history.json").read_text())
    final = json.loads((run / "result.json").read_text())["final"]
    return [numbers(e) for e in eval_entries(history)], numbers(final)


@pytest.mark.slow
def test_a_cut_fsdp_run_leaves_one_sharded_checkpoint(runs):
    directory = runs["cut"][0] / "checkpoints"
    last = torch.load(directory / "last.pt", weights_only=True)
    assert last["progress"]["global_step"] == CUT and last["progress"]["step_in_epoch"] == 15
    assert "model" not in last and len(last["rng"]) == 2
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["best.pt", "last.pt", f"step-{CUT}.pt", last["shards"]]
    )
    assert sorted(p.name for p in (directory / last["shards"]).iterdir()) == [
        ".metadata",
        "__0_0.distcp",
        "__1_0.distcp",
    ]
    assert not [p for p in runs["cut"][0].rglob(".*") if atomic.ORPHAN.fullmatch(p.name)]


@pytest.mark.slow
def test_the_cut_run_resumed_on_its_processes_ends_as_the_run_never_stopped(runs):
    cut = runs["cut"][0]
    args = [*ARGS, "trainer.batch_size=2", "trainer.strategy=fsdp", f"hydra.run.dir={cut}"]
    out = torchrun(2, args, cwd=cut.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resuming after step {CUT}" in out.stdout
    (ref_evals, ref_final), (evals, final) = scores(runs["fsdp"][0]), scores(cut)
    assert final == pytest.approx(ref_final, abs=1e-6)
    assert len(evals) == 2
    for a, b in zip(evals, ref_evals, strict=True):
        assert a.keys() == b.keys() and a == pytest.approx(b, abs=1e-6)


@pytest.mark.slow
def test_the_2_process_checkpoint_resumes_on_1_process_at_the_same_global_batch(runs, capsys):
    """DCP reshards the 2 ranks' shards onto 1; the RNG streams of rank 1 have no process to
    go to (one line says so), so dropout is off; sums over 4 sentences a micro-batch on one
    rank round otherwise than over 2 x 2: the tolerance of 2 processes against 1 (tests/test_distributed.py)."""
    run = runs["cut-on-one"][0]
    _, history = train_in_process(run, [*ARGS, "trainer.strategy=fsdp", "trainer.batch_size=4"])
    assert "checkpoint from 2 processes resumed on 1" in capsys.readouterr().err
    ref_evals, _ = scores(runs["fsdp"][0])
    for a, b in zip([numbers(e) for e in eval_entries(history)], ref_evals, strict=True):
        for key in ("eval_loss", "eval_precision", "eval_recall", "eval_f1", "eval_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), key
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)


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

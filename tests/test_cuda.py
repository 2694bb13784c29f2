"""The fast path on CUDA: what only a GPU can run. Skipped without one (CI has none); the device
lease runs this file first (experiments/benchmark/device_run.sh).

Each test is a tiny demo run of a few dozen steps on one process, against the eager loop on the
same device: the whole-step CUDA graphs (trainer.step_graphs, ner/step_graphs.py) and
torch.compile's CUDA graphs (trainer.compile, auto on CUDA) compute what eager steps compute, and
a run that replays graphs resumes exactly.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import QUICK, compose

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# Length buckets as on CUDA by default (auto), a few shapes: each is captured once.
COMMON = [*QUICK, "trainer.epochs=1", "data.max_train_samples=120", "trainer.eval_test=false"]
COMMON += ["trainer.log_every=1", "data.cache_dir=null", "trainer.bootstrap=0"]
EAGER = ["trainer.compile=false", "trainer.step_graphs=false"]
GRAPHS = ["trainer.compile=false", "trainer.step_graphs=true"]


def train_on_cuda(run_dir, overrides):
    """`ner.train.train` on this process's CUDA device; (log history, train.log), the history
    None for a run cut short (trainer.stop_after_steps), which leaves its checkpoint only."""
    from ner.distributed import Env
    from ner.train import train

    run_dir.mkdir(parents=True, exist_ok=True)
    finished = train(compose(overrides), Env(device=torch.device("cuda", 0)), run_dir) is not None
    log = (run_dir / "train.log").read_text()
    return json.loads((run_dir / "log_history.json").read_text()) if finished else None, log


def losses(history):
    return [e["loss"] for e in history if "learning_rate" in e]


def evaluation(history):
    [entry] = [e for e in history if "eval_f1" in e]
    return entry


def assert_same_run(a, b, rel):
    assert len(losses(a)) == 15 and losses(a)[-1] < losses(a)[0]  # steps that learn something
    assert losses(b) == pytest.approx(losses(a), rel=rel)
    for key in ("train_loss", "eval_loss", "eval_f1", "eval_accuracy"):
        assert evaluation(b)[key] == pytest.approx(evaluation(a)[key], rel=rel), key


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_step_graphs_compute_what_eager_steps_compute(tmp_path, precision):
    common = [*COMMON, f"trainer.precision={precision}", "model.dropout=0"]
    eager, _ = train_on_cuda(tmp_path / "eager", [*common, *EAGER])
    graphed, log = train_on_cuda(tmp_path / "graphs", [*common, *GRAPHS])
    assert "evaluation forwards: one CUDA graph per batch shape (trainer.step_graphs=true)" in log
    # The same kernels, eager or replayed; the rate a float32 tensor where eager passes a double.
    assert_same_run(eager, graphed, rel=1e-5)


def test_a_run_on_step_graphs_resumes_exactly_with_dropout(tmp_path):
    """A resumed attempt captures its graphs again; dropout draws from the restored generator,
    which every replay advances as an eager step would."""
    common = [*COMMON, *GRAPHS, "trainer.save_every_steps=4"]
    full, _ = train_on_cuda(tmp_path / "full", common)
    train_on_cuda(tmp_path / "cut", [*common, "trainer.stop_after_steps=10"])
    resumed, log = train_on_cuda(tmp_path / "cut", common)
    assert "resuming after step 8" in log
    assert losses(resumed) == pytest.approx(losses(full), abs=1e-6)
    for key in ("train_loss", "eval_loss", "eval_f1", "eval_accuracy"):
        assert evaluation(resumed)[key] == pytest.approx(evaluation(full)[key], abs=1e-6), key


def test_compile_auto_on_cuda_computes_what_eager_steps_compute(tmp_path):
    common = [*COMMON, "model.dropout=0"]
    eager, _ = train_on_cuda(tmp_path / "eager", [*common, *EAGER])
    compiled, log = train_on_cuda(tmp_path / "compiled", common)  # the defaults on CUDA
    assert "torch.compile, mode reduce-overhead" in log
    assert_same_run(eager, compiled, rel=1e-4)  # other kernels: the compiler fuses, reorders

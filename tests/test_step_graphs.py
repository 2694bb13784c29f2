"""trainer.step_graphs on the CPU: where it serves and what the run says, the learning rate as
device memory, the loss bookkeeping in place. The captured step itself needs CUDA:
tests/test_cuda.py runs it against the eager loop."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch
from conftest import QUICK, train_in_process

from ner.distributed import Env
from ner.loss import LossTracker
from ner.step_graphs import StepGraphs, plan_words, unserved


def trainer(**changes):
    settings = dict(
        step_graphs=True,
        strategy="ddp",
        grad_accum_steps=1,
        precision="fp32",
        gradient_checkpointing=False,
        compile=None,
    )
    return SimpleNamespace(**{**settings, **changes})


CUDA = Env(device=torch.device("cuda"))


def test_step_graphs_serve_one_cuda_process_and_say_why_not_elsewhere():
    assert unserved(trainer(), CUDA) is None
    assert unserved(trainer(step_graphs=False), Env()) is None  # off: nothing to say
    reasons = {
        "a CUDA device": unserved(trainer(), Env()),
        "2 processes": unserved(trainer(), Env(world_size=2, device=torch.device("cuda"))),
        "fsdp": unserved(trainer(strategy="fsdp"), CUDA),
        "several micro-batches": unserved(trainer(grad_accum_steps=2), CUDA),
        "fp16": unserved(trainer(precision="fp16"), CUDA),
        "checkpointing": unserved(trainer(gradient_checkpointing=True), CUDA),
    }
    for words, reason in reasons.items():
        assert words in reason, (words, reason)
    assert unserved(trainer(precision="bf16"), CUDA) is None

    served, words = plan_words(trainer(), CUDA, "COMPILE")
    assert served and words == (
        "training steps and evaluation forwards: one CUDA graph per batch shape "
        "(trainer.step_graphs=true), of eager kernels"
    )
    assert (
        words.replace("eager kernels", "compiled kernels (trainer.compile=true)")
        == (plan_words(trainer(compile=True), CUDA, "COMPILE")[1])
    )
    served, words = plan_words(trainer(), Env(), "COMPILE")
    assert not served
    assert words == (
        "COMPILE; trainer.step_graphs=true does not serve here: CUDA graphs need a CUDA device, "
        "this run's is cpu"
    )
    assert plan_words(trainer(step_graphs=False), CUDA, "COMPILE") == (False, "COMPILE")


def test_the_learning_rate_as_device_memory_steps_as_the_schedules_floats_do():
    """A graph reads the learning rate from a tensor; the schedule and checkpoints keep floats."""
    torch.manual_seed(0)
    plain, graphed = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    graphed.load_state_dict(plain.state_dict())
    initial = [p.detach().clone() for p in plain.parameters()]
    groups = lambda m: [{"params": [m.weight]}, {"params": [m.bias], "lr": 3e-2}]  # noqa: E731
    optimizers = [torch.optim.AdamW(groups(m), lr=1e-2, fused=True) for m in (plain, graphed)]
    schedules = [torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1 - s / 10) for o in optimizers]
    graphs = StepGraphs(lambda batches, step: None, optimizers[1], torch.device("cpu"))
    for _ in range(5):
        x = torch.randn(2, 4)
        for model, optimizer, schedule in zip((plain, graphed), optimizers, schedules, strict=True):
            model(x).square().sum().backward()
            if optimizer is optimizers[1]:
                for lr, group in zip(graphs.lrs, optimizer.param_groups, strict=True):
                    lr.fill_(group["lr"])
                with graphs.lr_tensors(capturable=True):
                    assert all(
                        g["lr"] is lr
                        for g, lr in zip(optimizer.param_groups, graphs.lrs, strict=True)
                    )
                    assert all(g["capturable"] for g in optimizer.param_groups)
                    optimizer.step()
            else:
                optimizer.step()
            optimizer.zero_grad()
            schedule.step()
    for a, b, start in zip(plain.parameters(), graphed.parameters(), initial, strict=True):
        # The same update, to float rounding (a float32 rate against a double).
        assert torch.allclose(a, b, rtol=0, atol=1e-7)
        assert not torch.allclose(a, start)  # the steps moved the weights
    assert [g["lr"] for g in optimizers[1].param_groups] == pytest.approx([5e-3, 1.5e-2])
    assert all(type(g["lr"]) is float and not g["capturable"] for g in optimizers[1].param_groups)
    assert schedules[1].state_dict() == schedules[0].state_dict()
    with pytest.raises(RuntimeError), graphs.lr_tensors(capturable=True):
        raise RuntimeError("a step that failed")
    assert all(type(g["lr"]) is float and not g["capturable"] for g in optimizers[1].param_groups)


def test_the_loss_bookkeeping_is_in_place_and_takes_the_step_from_a_tensor():
    """A CUDA graph writes into the tensors it was captured with: step_done must update them, not
    replace them, and read the step's number from device memory."""
    losses = LossTracker(torch.device("cpu"))
    tensors = [losses.bad_step, losses.window, losses.window_count]
    step = torch.tensor(7)
    losses.add(torch.tensor(2.0))
    losses.step_done(step, torch.tensor(4))
    assert int(losses.bad_step) == -1
    losses.add(torch.tensor(float("nan")))
    step.fill_(8)
    losses.step_done(step, torch.tensor(4))
    step.fill_(9)
    losses.step_done(step, torch.tensor(4))  # the first non-finite step stays noted
    assert all(
        a is b
        for a, b in zip([losses.bad_step, losses.window, losses.window_count], tensors, strict=True)
    )
    assert int(losses.bad_step) == 8 and int(losses.window_count) == 12


def test_a_cpu_run_asked_for_step_graphs_says_why_not_and_trains(tmp_path):
    overrides = [*QUICK, "trainer.epochs=1", "data.max_train_samples=24", "trainer.eval_test=false"]
    overrides += ["trainer.batch_size=4", "optim.warmup_steps=2"]
    _, history = train_in_process(tmp_path / "run", [*overrides, "trainer.step_graphs=true"])
    log = (tmp_path / "run" / "train.log").read_text()
    assert "trainer.step_graphs=true does not serve here: CUDA graphs need a CUDA device" in log
    assert [e for e in history if "eval_f1" in e]


def test_every_step_goes_through_the_graphs_once_and_trains_as_the_loop_does(tmp_path, monkeypatch):
    """StepGraphs' bookkeeping, on the CPU: a shape's first step eager, its second captured and
    replayed, the rest replayed, each with its own batch, learning rate and step number. A CPU
    stand-in for a graph replays by running the captured step on the graph's input buffers (a
    capture records and runs nothing, as CUDA's does), so the run equals the plain loop's only if
    no step is lost, run twice, or given another step's inputs."""
    import ner.step_graphs as step_graphs

    events, numbers = [], []  # what ran, on which shape; the step number each step read

    class Replayed:
        def __init__(self, graphs, inputs):
            self.graphs, self.inputs = graphs, inputs

        def replay(self):
            events.append(("replay", tuple(self.inputs["input_ids"].shape)))
            numbers.append(int(self.graphs.step_number))
            with self.graphs.lr_tensors():
                self.graphs.step_on_device([self.inputs], self.graphs.step_number)

    def eager(graphs, inputs):
        events.append(("eager", tuple(inputs["input_ids"].shape)))
        numbers.append(int(graphs.step_number))
        with graphs.lr_tensors():
            graphs.step_on_device([inputs], graphs.step_number)

    def capture(graphs, inputs):
        events.append(("capture", tuple(inputs["input_ids"].shape)))
        return Replayed(graphs, inputs)

    class ReplayedForward:
        def __init__(self, module, inputs, logits):
            self.module, self.inputs, self.logits = module, inputs, logits

        def replay(self):
            forwards.append("replay")
            self.logits.copy_(self.module(**self.inputs).logits)

    def capture_forward(graphs, inputs):
        forwards.append("capture")
        logits = torch.full_like(graphs.module(**inputs).logits, float("nan"))  # its buffer
        return ReplayedForward(graphs.module, inputs, logits), logits

    forwards = []  # evaluation's captures and replays
    common = [*QUICK, "trainer.epochs=1", "trainer.length_buckets=window", "trainer.log_every=1"]
    common += ["trainer.eval_test=false", "data.cache_dir=null"]
    _, plain = train_in_process(tmp_path / "plain", common)
    monkeypatch.setattr(step_graphs, "unserved", lambda trainer_cfg, env: None)
    monkeypatch.setattr(step_graphs.StepGraphs, "eager", eager)
    monkeypatch.setattr(step_graphs.StepGraphs, "capture", capture)
    monkeypatch.setattr(step_graphs.ForwardGraphs, "capture", capture_forward)
    _, graphed = train_in_process(tmp_path / "graphs", [*common, "trainer.step_graphs=true"])

    assert (
        "training steps and evaluation forwards: one CUDA graph per batch shape"
        in (tmp_path / "graphs" / "train.log").read_text()
    )
    shapes = list(dict.fromkeys(shape for _, shape in events))
    assert len(shapes) >= 3  # length buckets: several graphs
    for shape in shapes:
        kinds = [kind for kind, s in events if s == shape]
        assert kinds[0] == "eager" and set(kinds[1:3]) <= {"capture", "replay"}, shape
        if len(kinds) > 1:
            assert kinds[1:3] == ["capture", "replay"] and set(kinds[3:]) <= {"replay"}, shape
    steps = [e for e in plain if "learning_rate" in e]
    assert len([k for k, _ in events if k != "capture"]) == len(steps) == 30
    assert numbers == list(range(1, 31))  # each step reads its own number from device memory
    # The same steps, dropout on: the same draws; the rate a float32 tensor against a double.
    losses = [e["loss"] for e in steps]
    assert [e["loss"] for e in graphed if "learning_rate" in e] == pytest.approx(losses, rel=1e-6)
    # Evaluation: the validation batches of each shape after its first replayed (61 sentences
    # at batch 7: 9 batches, 2-4 shapes), each reading its own batch from the graph's inputs.
    assert forwards.count("capture") >= 2 and forwards.count("replay") >= 4
    [a] = [e for e in plain if "eval_f1" in e]
    [b] = [e for e in graphed if "eval_f1" in e]
    for key in ("train_loss", "eval_loss", "eval_f1", "eval_accuracy"):
        assert b[key] == pytest.approx(a[key], rel=1e-6), key


def test_a_step_that_cannot_be_captured_stops_in_one_line_whose_advice_resumes(
    tmp_path, monkeypatch
):
    """A capture that fails (an operation a graph cannot hold) is one line naming the shape and
    the way on: the same command with trainer.step_graphs=false resumes from the last checkpoint
    and ends where a run never graphed does."""
    import ner.step_graphs as step_graphs
    from ner.errors import UserError

    def eager(graphs, inputs):
        with graphs.lr_tensors():
            graphs.step_on_device([inputs], graphs.step_number)

    def capture(graphs, inputs):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore")

    common = [*QUICK, "trainer.epochs=1", "trainer.length_buckets=window", "trainer.log_every=1"]
    common += ["trainer.eval_test=false", "data.cache_dir=null", "trainer.save_every_steps=2"]
    _, plain = train_in_process(tmp_path / "plain", common)
    monkeypatch.setattr(step_graphs, "unserved", lambda trainer_cfg, env: None)
    monkeypatch.setattr(step_graphs.StepGraphs, "eager", eager)
    monkeypatch.setattr(step_graphs.StepGraphs, "capture", capture)
    with pytest.raises(UserError) as refused:
        train_in_process(tmp_path / "graphs", [*common, "trainer.step_graphs=true"])
    assert re.fullmatch(
        r"trainer\.step_graphs: the optimizer step of batch shape 8x\d+ cannot be captured in a "
        r"CUDA graph \(RuntimeError: CUDA error: operation not permitted when stream is "
        r"capturing\); run the same command with trainer\.step_graphs=false",
        str(refused.value),
    )
    monkeypatch.undo()
    _, resumed = train_in_process(tmp_path / "graphs", [*common, "trainer.step_graphs=false"])
    assert "resuming after step" in (tmp_path / "graphs" / "train.log").read_text()
    losses = [e["loss"] for e in plain if "learning_rate" in e]
    assert [e["loss"] for e in resumed if "learning_rate" in e] == pytest.approx(losses, rel=1e-6)
    [a] = [e for e in plain if "eval_f1" in e]
    [b] = [e for e in resumed if "eval_f1" in e]
    assert b["eval_f1"] == pytest.approx(a["eval_f1"], rel=1e-6)

"""Several processes (gloo on CPU): same answers as one process, one run directory, restarts."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import QUICK, eval_entries, torchrun, torchrun_cmd, train_in_process

pytestmark = pytest.mark.slow

NO_DROPOUT = [*QUICK, "model.dropout=0.0", "trainer.eval_test=false", "trainer.log_every=1"]


def run_dirs(root: Path) -> list[Path]:
    """Every directory under root that a run wrote (it holds run_info.json)."""
    return sorted(p.parent for p in root.rglob("run_info.json"))


def step_losses(history: list[dict]) -> list[float]:
    return [e["loss"] for e in history if "learning_rate" in e]


# The recipe knobs together (issue 20): the head at its own lr, the embeddings at lr * 0.8^2
# below a frozen layer 1 (the gradient passes through it), weight decay but not on biases and
# norm weights; label smoothing and inverse-frequency class weights, whose step loss is divided
# by the summed weights of the whole step's labelled tokens; a cosine schedule warmed up over a
# tenth of the steps; activation checkpointing (recomputation: the same numbers in fp32).
GROUPS = [
    "optim.schedule=cosine",
    "optim.warmup_steps=0",  # (QUICK sets 5) the ratio in its place
    "optim.warmup_ratio=0.1",
    "trainer.gradient_checkpointing=true",
    "optim.head_lr=1e-2",
    "optim.layer_decay=0.8",
    "optim.weight_decay=0.01",
    "model.freeze_layers=1",
    "optim.label_smoothing=0.1",
    "optim.class_weights=inverse_frequency",
]


@pytest.mark.parametrize("knobs", [[], GROUPS], ids=["plain", "recipe-knobs"])
def test_two_processes_at_batch_b_equal_one_at_2b(tmp_path, knobs):
    """torchrun with 2 ranks x batch 4 == 1 process x batch 8: losses, weights and metrics, and
    the test scores' intervals and the card's error analysis (ner/report/outcome.py)."""
    args = [*NO_DROPOUT, *knobs, "trainer.eval_test=true"]  # (NO_DROPOUT has it off)
    out = torchrun(2, [*args, "trainer.batch_size=4"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [two] = run_dirs(tmp_path / "outputs")  # one directory for the whole job, not one per rank
    assert "world size 2 x per-rank batch 4 x accumulation 1 = global batch 8" in out.stdout
    assert out.stdout.count("epoch 1: train loss") == 1  # rank 0 alone prints
    assert ("M of them frozen" in out.stdout) is bool(knobs)
    _, one_history = train_in_process(tmp_path / "one", [*args, "trainer.batch_size=8"])
    two_history = json.loads((two / "log_history.json").read_text())

    assert len(step_losses(two_history)) == 60
    assert step_losses(two_history) == pytest.approx(step_losses(one_history), abs=1e-5)
    wa = torch.load(two / "checkpoints/last.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "one/checkpoints/last.pt", weights_only=True)["model"]
    for k in wa:
        if k.endswith("attention.self.key.bias"):
            # Softmax ignores a shift shared by all keys, so this bias has a true gradient of
            # exactly 0: what it gets is rounding noise, which Adam scales up to ~lr-sized
            # steps. It cannot change any output; every other weight must match.
            continue
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=1e-5)
    for a, b in zip(eval_entries(two_history), eval_entries(one_history), strict=True):
        for key in ("eval_loss", "eval_precision", "eval_recall", "eval_f1", "eval_accuracy"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), key
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
    assert len(list((two / "tensorboard").glob("events.*"))) == 1
    # The best model's saved predictions (ner/report/predictions.py): rank 0 wrote the same file.
    kept = sorted(p.name for p in (two / "predictions").iterdir())
    assert [name.split(".")[0] for name in kept] == ["test", "validation"]
    for name in kept:
        one_kept = tmp_path / "one" / "predictions" / name
        assert (two / "predictions" / name).read_bytes() == one_kept.read_bytes(), name
    [two_test], [one_test] = ([e for e in h if "test_f1" in e] for h in (two_history, one_history))
    intervals = [f"test_{k}_ci" for k in ("precision", "recall", "f1")]
    assert [two_test[k] for k in intervals] == [one_test[k] for k in intervals]
    two_card, one_card = ((d / "README.md").read_text() for d in (two, tmp_path / "one"))
    assert two_card.split("## Error analysis")[1] == one_card.split("## Error analysis")[1]


def test_a_resume_on_more_processes_keeps_the_global_batch_or_is_refused(tmp_path):
    """A 1-process run at batch 8 stopped at step 40 (of 2 x 30). The same command on 2
    processes (global batch 16) is refused in one line that says how to keep it, writing
    nothing; with that setting (2 x 4) the run resumes and ends as the run never stopped."""
    from test_rundir import snapshot

    _, uninterrupted = train_in_process(tmp_path / "ref", NO_DROPOUT)
    cut = tmp_path / "cut"
    train_in_process(
        cut, [*NO_DROPOUT, "trainer.save_every_steps=10", "trainer.stop_after_steps=40"]
    )
    args = [*NO_DROPOUT, "trainer.save_every_steps=10", f"hydra.run.dir={cut}"]
    before = snapshot(cut)
    refused = torchrun(2, args, cwd=tmp_path)
    # The workers exit 2 (rank 0 says why, once); torchrun's agent reports them and exits 1.
    assert refused.returncode == 1 and "exitcode  : 2" in refused.stderr, refused.stderr[-3000:]
    [line] = [ln for ln in refused.stderr.splitlines() if ln.startswith("error:")]
    assert line == (
        f"error: checkpoint {cut}/checkpoints/last.pt was trained at global batch 8 (1 process x "
        "trainer.batch_size=8 x trainer.grad_accum_steps=1), this run's is 16 (2 processes x 8 x "
        "1): another schedule and other steps; on 2 processes keep it with trainer.batch_size=4"
    )
    assert snapshot(cut) == before

    resumed = torchrun(2, [*args, "trainer.batch_size=4"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after step 40 (epoch 2 of 2)" in resumed.stdout
    assert "extended" not in resumed.stdout
    history = json.loads((cut / "log_history.json").read_text())
    assert step_losses(history) == pytest.approx(step_losses(uninterrupted), abs=1e-5)
    assert [e["learning_rate"] for e in history if "learning_rate" in e] == pytest.approx(
        [e["learning_rate"] for e in uninterrupted if "learning_rate" in e], rel=1e-9
    )
    for a, b in zip(eval_entries(history), eval_entries(uninterrupted), strict=True):
        for key in ("eval_loss", "eval_f1", "train_loss"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), key
    assert history[-1]["lr_schedule"] == [[0, 60]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_node_simulation_writes_one_run_directory(tmp_path):
    """Two torchrun launchers (--nnodes=2, one process each) meet through a c10d rendezvous."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [
        "--nnodes=2",
        "--nproc_per_node=1",
        "--rdzv_backend=c10d",
        f"--rdzv_endpoint=127.0.0.1:{port}",
        "--rdzv_id=twonode",
    ]
    cmd = torchrun_cmd(launch, [*QUICK, "trainer.epochs=1"])
    nodes = [
        subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [n.communicate(timeout=300) for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    [run] = run_dirs(tmp_path / "outputs")
    assert run == tmp_path / "outputs/torchrun/twonode"
    assert len(list((run / "tensorboard").glob("events.*"))) == 1
    assert json.loads((run / "run_info.json").read_text())["world_size"] == 2
    assert (run / "result.json").is_file()


def worker_pids(agent: int) -> dict[int, int]:
    """{RANK: pid} of the worker processes whose parent is the torchrun agent `agent`."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) != agent:
                continue
            env = dict(
                kv.split("=", 1) for kv in (proc / "environ").read_text().split("\0") if "=" in kv
            )
        except (OSError, ValueError, IndexError):
            continue
        if "RANK" in env:
            found[int(env["RANK"])] = int(proc.name)
    return found


def test_killed_worker_is_restarted_and_the_job_ends_like_an_uninterrupted_one(tmp_path):
    """--max-restarts=1: SIGKILL rank 1 mid-epoch; the group restarts, resumes from the last
    checkpoint and ends with the uninterrupted run's metrics."""
    args = [*QUICK, "trainer.epochs=3", "trainer.batch_size=4", "trainer.save_every_steps=5"]
    ref = torchrun(2, [*args, f"hydra.run.dir={tmp_path}/ref"], cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr[-3000:]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = ["--standalone", "--nproc_per_node=2", "--max-restarts=1"]
    cmd = torchrun_cmd(launch, [*args, f"hydra.run.dir={tmp_path}/faulty"])
    agent = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    target = tmp_path / "faulty/checkpoints/step-40.pt"  # epoch 2 of 3 (30 steps per epoch)
    deadline = time.monotonic() + 240
    while not target.exists() and agent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert target.exists(), "the run never reached the checkpoint of step 40"
    victim = worker_pids(agent.pid)[1]
    os.kill(victim, signal.SIGKILL)
    out, err = agent.communicate(timeout=300)
    assert agent.returncode == 0, err[-3000:]
    # The restarted group resumed from a mid-epoch checkpoint of epoch 2 (epochs counted from 1).
    assert re.search(r"resuming after step \d+ \(epoch 2 of 3\)", out), out

    final = {}
    for name in ("ref", "faulty"):
        final[name] = json.loads((tmp_path / name / "result.json").read_text())
    for key, value in final["ref"]["final"].items():
        if "runtime" not in key and "per_second" not in key:
            assert final["faulty"]["final"][key] == pytest.approx(value, abs=1e-6), key
    assert final["faulty"]["test"]["test_f1"] == pytest.approx(
        final["ref"]["test"]["test_f1"], abs=1e-6
    )


def test_a_process_killed_while_saving_leaves_the_previous_checkpoint_loadable(tmp_path):
    """SIGKILL in the middle of atomic_save: last.pt is still the previous, complete checkpoint."""
    script = tmp_path / "saver.py"
    script.write_text(
        "import sys, torch\n"
        "from pathlib import Path\n"
        "from ner.checkpoint import atomic_save\n"
        "path = Path(sys.argv[1])\n"
        "atomic_save({'format': 1, 'n': 0, 'w': torch.zeros(10)}, path)\n"
        "print('first', flush=True)\n"
        "big = torch.randn(64, 1024, 1024)  # 256 MiB: slow enough to be killed mid-write\n"
        "for n in range(1, 1000):\n"
        "    atomic_save({'format': 1, 'n': n, 'w': big}, path)\n"
    )
    path = tmp_path / "ckpt" / "last.pt"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "first"
    tmp_files = []
    deadline = time.monotonic() + 60
    while not tmp_files and time.monotonic() < deadline:
        tmp_files = [
            p
            for p in path.parent.iterdir()
            if p.name.startswith(".last.pt.tmp") and p.stat().st_size > 0
        ]
        time.sleep(0.005)
    assert tmp_files, "never saw a save in progress"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    from ner.checkpoint import load

    ckpt = load(path)
    assert ckpt["format"] == 1 and ckpt["w"].numel() in (10, 64 * 1024 * 1024)
    if ckpt["n"] == 0:
        assert torch.equal(ckpt["w"], torch.zeros(10))


def test_two_processes_equal_one_with_length_buckets(tmp_path):
    """The fast path's static shapes (trainer.length_buckets=window, CUDA's default): every
    micro-batch padded to a bucket and filled with masked rows, 2 ranks x batch 4 still update
    and score as 1 process x batch 8 (the global-token normalisation counts no filler)."""
    args = [*NO_DROPOUT, "trainer.length_buckets=window"]
    out = torchrun(2, [*args, "trainer.batch_size=4"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [two] = run_dirs(tmp_path / "outputs")
    _, one = train_in_process(tmp_path / "one", [*args, "trainer.batch_size=8"])
    two_history = json.loads((two / "log_history.json").read_text())
    assert step_losses(two_history) == pytest.approx(step_losses(one), abs=1e-5)
    for a, b in zip(eval_entries(two_history), eval_entries(one), strict=True):
        for key in ("eval_loss", "eval_f1", "eval_accuracy", "train_loss"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), key

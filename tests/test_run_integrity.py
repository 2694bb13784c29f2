"""Run directories for real: one owner, nothing lost on a signal, extension, a full disk."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import QUICK, eval_entries, run_cli, torchrun, torchrun_cmd, train_in_process

from ner.run.preemption import EXIT_INTERRUPTED

pytestmark = pytest.mark.slow

LONGER = [*QUICK, "trainer.epochs=4", "data.max_train_samples=600"]


def train_cmd(run: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "ner.train", *args, f"hydra.run.dir={run}"]


def start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: SIGINT handled, even when the tests run in a background job.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.02)


def logged(run: Path, text: str) -> bool:
    log = run / "train.log"
    return log.exists() and text in log.read_text(encoding="utf-8")


def test_a_second_run_into_a_directory_in_use_is_refused_at_once(tmp_path):
    run = tmp_path / "run"
    first = start(train_cmd(run, LONGER), tmp_path)
    wait_for(lambda: logged(run, "world size 1"), first, "the first run training")
    first.send_signal(signal.SIGSTOP)  # hold it mid-run (alive) while the second one starts
    try:
        second = run_cli(train_cmd(run, LONGER), tmp_path, 120)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2
    [line] = second.stderr.strip().splitlines()
    assert line.startswith(
        f"error: run dir {run} is in use by another run: pid {first.pid} on host"
    )
    assert "Traceback" not in second.stdout + second.stderr
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    # Only the first run wrote: one attempt, one events file, its own log lines once.
    assert sorted(p.name for p in (run / "attempts").iterdir()) == ["1"]
    assert len(list((run / "tensorboard").glob("events.*"))) == 1
    assert (run / "train.log").read_text().count("world size 1") == 1
    assert not (run / ".lock").exists()


def test_a_run_killed_with_sigkill_shows_as_killed_and_the_next_run_resumes(tmp_path):
    from ner.tools.report import build_rows

    run = tmp_path / "run"
    args = [*LONGER, "trainer.save_every_steps=5"]
    first = start(train_cmd(run, args), tmp_path)
    wait_for(lambda: (run / "checkpoints" / "step-10.pt").exists(), first, "step 10")
    first.kill()
    first.wait()
    [row] = build_rows(tmp_path)
    assert row["status"] == "killed"
    second = run_cli(train_cmd(run, args), tmp_path, 300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming after step " in second.stdout
    [row] = build_rows(tmp_path)
    assert row["status"] == "finished"


def events_steps(events_file: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events_file), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


def test_sigterm_to_a_torchrun_job_stops_every_rank_at_one_step_and_resumes_exactly(tmp_path):
    """SIGTERM to the agent (as Kubernetes sends it; the agent forwards it to the workers)
    mid-epoch with save_every_steps=0: the job checkpoints at one step, is recorded as
    interrupted, and the resumed job ends with the uninterrupted job's metrics."""
    # 75 steps of 2 x 4 sentences per epoch: the signal lands inside epoch 2.
    args = [*LONGER, "trainer.epochs=2", "trainer.batch_size=4", "trainer.log_every=1"]
    ref = torchrun(2, [*args, f"hydra.run.dir={tmp_path}/ref"], cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr[-3000:]

    cut = tmp_path / "cut"
    launch = ["--standalone", "--nproc_per_node=2"]
    agent = start(torchrun_cmd(launch, [*args, f"hydra.run.dir={cut}"]), tmp_path)
    wait_for(lambda: logged(cut, "epoch 1: train loss"), agent, "the end of epoch 1")
    time.sleep(0.2)  # into epoch 2
    agent.send_signal(signal.SIGTERM)
    _, err = agent.communicate(timeout=120)
    error = json.loads((cut / "error.json").read_text())
    assert error["status"] == "interrupted" and error["signal"] == "SIGTERM", error
    stopped = error["global_step"]
    assert 75 < stopped < 150, f"stopped at step {stopped}: not inside epoch 2"
    assert f"interrupted by SIGTERM after step {stopped} (epoch" in err
    saved = torch.load(cut / "checkpoints" / "last.pt", weights_only=True)["progress"]
    assert saved["global_step"] == stopped

    again = torchrun(2, [*args, f"hydra.run.dir={cut}"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed_at = json.loads((cut / "attempts/2/launch.json").read_text())["resumed_at_step"]
    assert resumed_at == stopped
    # The steps the first attempt completed, from its own TensorBoard file: at most one is redone.
    first_events = min((cut / "tensorboard").glob("events.*"), key=lambda p: p.stat().st_mtime)
    last_done = max(events_steps(first_events, "train/loss"))
    assert last_done - resumed_at <= 1

    results = {n: json.loads((tmp_path / n / "result.json").read_text()) for n in ("ref", "cut")}
    for key, value in results["ref"]["final"].items():
        if "runtime" not in key and "per_second" not in key:
            assert results["cut"]["final"][key] == pytest.approx(value, abs=1e-6), key
    for key, value in results["ref"]["test"].items():
        if "runtime" not in key and "per_second" not in key:
            assert results["cut"]["test"][key] == pytest.approx(value, abs=1e-6), key
    assert json.loads((cut / "attempts/1/end.json").read_text())["status"] == "interrupted"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGUSR1])
def test_sigint_and_sigusr1_checkpoint_print_one_line_and_exit_for_a_rerun(tmp_path, signum):
    run = tmp_path / "run"
    args = [*LONGER, "trainer.epochs=3"]
    proc = start(train_cmd(run, args), tmp_path)
    wait_for(lambda: logged(run, "epoch 1: train loss"), proc, "the end of epoch 1")
    time.sleep(0.3)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED
    name = signal.Signals(signum).name
    [line] = err.strip().splitlines()
    assert line.startswith(f"interrupted by {name} after step ") and "Traceback" not in err
    assert f"run the same command (with hydra.run.dir={run})" in line
    error = json.loads((run / "error.json").read_text())
    step = torch.load(run / "checkpoints/last.pt", weights_only=True)["progress"]["global_step"]
    assert (error["status"], error["signal"], error["global_step"]) == ("interrupted", name, step)
    # One convention on both sides, epochs counted from 1: the step and the epoch it was in.
    where = re.search(rf"after (step {step} \(epoch \d of 3\));", line).group(1)
    again = run_cli(train_cmd(run, args), tmp_path, 300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming after {where}" in again.stdout
    assert json.loads((run / "result.json").read_text())["status"] == "finished"
    assert not (run / "error.json").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_after_the_first_do_not_change_the_exit_status_of_a_saved_run(tmp_path, signum):
    """A double Ctrl-C, a scheduler repeating SIGTERM: once the first signal's checkpoint and
    error.json are written, the copies that keep coming until the process is gone change
    nothing; it exits 75, so `[ $? -eq 75 ] && scontrol requeue` requeues it."""
    run = tmp_path / "run"
    proc = start(train_cmd(run, [*QUICK, "trainer.epochs=1", "trainer.progress=true"]), tmp_path)
    # After a step (the first progress line, step 5 of 30), so that the line names the step.
    wait_for(lambda: logged(run, "step 5/"), proc, "step 5")
    proc.send_signal(signum)
    copies = 0
    while proc.poll() is None:
        if (run / "error.json").exists():  # saved and recorded: the copies come while it exits
            proc.send_signal(signum)
            copies += 1
        time.sleep(0.002)
    _, err = proc.communicate()
    assert proc.returncode == EXIT_INTERRUPTED, (proc.returncode, err[-2000:])
    assert copies > 0, "the process was gone before a second signal reached it"
    assert json.loads((run / "error.json").read_text())["status"] == "interrupted"
    [line] = err.strip().splitlines()
    assert line.startswith(f"interrupted by {signal.Signals(signum).name} after step ")


def test_a_signal_after_result_json_leaves_a_finished_run(tmp_path):
    """SIGTERM as soon as result.json is written (the process signals itself there, a real
    signal at that moment): the run is finished, exits 0, and nothing says it was interrupted."""
    run = tmp_path / "run"
    script = (
        "import os, signal, sys\n"
        "from ner.run import rundir\n"
        "finished = rundir.RunDir.finished\n"
        "def then_signal(self, result):\n"
        "    finished(self, result)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "rundir.RunDir.finished = then_signal\n"
        "from ner.train import main\n"
        "main()\n"
    )
    args = [*QUICK, "trainer.epochs=1", f"hydra.run.dir={run}"]
    out = run_cli([sys.executable, "-c", script, *args], tmp_path, 300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "steps in 1 epoch;" in out.stdout  # not "1 epochs"
    assert "SIGTERM came as the run finished: it is finished, nothing to resume" in out.stdout
    assert json.loads((run / "result.json").read_text())["status"] == "finished"
    assert not (run / "error.json").exists()
    assert json.loads((run / "attempts/1/end.json").read_text())["status"] == "finished"
    again = run_cli(train_cmd(run, [*QUICK, "trainer.epochs=1"]), tmp_path, 300)
    assert again.returncode == 0 and "holds a finished run" in again.stdout, again.stderr


def test_a_finished_run_extended_with_more_epochs_states_its_schedules(tmp_path):
    run = tmp_path / "run"
    train_in_process(run, QUICK)
    first = json.loads((run / "result.json").read_text())
    _, history = train_in_process(run, [*QUICK, "trainer.epochs=3"])
    assert [e["epoch"] for e in eval_entries(history)] == [1.0, 2.0, 3.0]
    assert history[-1]["lr_schedule"] == [[0, 60], [60, 90]]
    after = [e for e in history if "learning_rate" in e and e["step"] > 60]
    assert after and after[0]["learning_rate"] > 0  # the old schedule had reached 0 at step 60
    card = (run / "README.md").read_text()
    assert (
        "- lr_scheduler_segments: steps 1-60 decay linearly to 0 at step 60; steps 61-90 decay "
        "linearly to 0 at step 90" in card
    )
    configs = [yaml.safe_load((run / f"attempts/{k}/config.yaml").read_text()) for k in (1, 2)]
    assert [c["trainer"]["epochs"] for c in configs] == [2, 3]
    ends = [json.loads((run / f"attempts/{k}/end.json").read_text()) for k in (1, 2)]
    assert [e["status"] for e in ends] == ["finished", "finished"]
    result = json.loads((run / "result.json").read_text())
    assert result["wall_time_s"] > first["wall_time_s"]  # the time of both attempts


def test_an_extended_cosine_run_follows_the_cosine_planned_for_the_new_total(tmp_path):
    from transformers import get_cosine_schedule_with_warmup

    run, small = tmp_path / "run", [*QUICK, "data.max_train_samples=80", "optim.schedule=cosine"]
    train_in_process(run, [*small, "trainer.epochs=1"])  # 10 steps
    _, history = train_in_process(run, small)  # extended to 2 epochs: 20 steps
    assert history[-1]["lr_schedule"] == [[0, 10], [10, 20]]
    plan = get_cosine_schedule_with_warmup(
        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=3e-3), 5, 20
    ).lr_lambdas[0]
    logged = {e["step"]: e["learning_rate"] for e in history if "learning_rate" in e}
    assert logged[10] == 0.0  # the end of the first plan
    assert logged == {10: 0.0, **{s: pytest.approx(3e-3 * plan(s), rel=1e-12) for s in (5, 15, 20)}}
    card = (run / "README.md").read_text()
    assert "- lr_scheduler_type: cosine\n" in card
    assert (
        "- lr_scheduler_segments: steps 1-10 follow a cosine decay to 0 at step 10; steps 11-20 "
        "follow a cosine decay to 0 at step 20" in card
    )


def test_a_checkpoint_of_an_older_version_resumes(tmp_path):
    """An older config lacks a key this version has, and has one it no longer has."""
    run = tmp_path / "run"
    args = [*QUICK, "trainer.save_every_steps=5"]
    train_in_process(run, [*args, "trainer.stop_after_steps=40"])
    path = run / "checkpoints" / "last.pt"
    ckpt = torch.load(path, weights_only=True)
    old = yaml.safe_load(ckpt["config"])
    del old["model"]["window_stride"]
    for key in ("schedule", "warmup_ratio", "label_smoothing", "class_weights"):
        del old["optim"][key]  # from before issue 20's knobs
    del old["trainer"]["gradient_checkpointing"]
    old["trainer"]["retired_key"] = True
    ckpt["config"] = yaml.safe_dump(old)
    torch.save(ckpt, path)
    _, history = train_in_process(run, [*args, "trainer.log_every=3", "trainer.num_workers=0"])
    assert [e["epoch"] for e in eval_entries(history)] == [1.0, 2.0]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare for a private tmpfs")
def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    train = " ".join(train_cmd(run, [*QUICK, "data.cache_dir=null"]))
    script = (
        f"mount -t tmpfs -o size=700k tmpfs {run} || exit 99; {train}; echo rc=$?; "
        f"ls -a {run} {run}/checkpoints; cat {run}/error.json"
    )
    out = run_cli(["unshare", "-rm", "sh", "-c", script], tmp_path, 300)
    if "rc=" not in out.stdout:
        pytest.skip(f"no private tmpfs here: {out.stderr[-300:]}")
    assert "rc=2" in out.stdout, out.stdout + out.stderr[-2000:]
    [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert line.startswith(f"error: checkpoint {run}/checkpoints/last.pt: no space left (needs")
    assert "Traceback" not in out.stderr and ".tmp" not in out.stdout
    assert '"status": "failed"' in out.stdout  # error.json was written


def test_the_offline_hub_is_one_line(tmp_path):
    out = run_cli(
        [sys.executable, "-m", "ner.train", "data=wikiann", f"hydra.run.dir={tmp_path}/r"],
        tmp_path,
        120,
    )
    assert out.returncode == 2
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("error: dataset unimelb-nlp/wikiann (he): cannot reach the Hugging Face")
    assert not (tmp_path / "r").exists()


def submitit_task_pid(folder: Path) -> int | None:
    """The pid of rank 0 of the submitit local job whose files are under `folder`."""
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = b"submitit.core._submit" in command and str(folder).encode() in command
        if ours and b"SUBMITIT_LOCAL_GLOBALID=0" in environ:
            return int(proc.name)
    return None


@pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
    reason="needs the slurm extra (hydra-submitit-launcher)",
)
def test_a_submitit_job_sent_its_preemption_signal_checkpoints_requeues_and_finishes(tmp_path):
    """submitit's local executor stands in for Slurm: SIGUSR2 (submitit's signal before a time
    limit or at preemption) makes the job checkpoint, submitit requeue it, and the requeued job
    resume from that step and finish."""
    sweep = tmp_path / "sweep"
    args = [
        *LONGER,
        "trainer.epochs=3",
        "hydra/launcher=submitit_local",
        f"hydra.sweep.dir={sweep}",
    ]
    sweeper = start([sys.executable, "-m", "ner.train", "-m", *args], tmp_path)
    job = sweep / "0"
    wait_for(lambda: logged(job, "epoch 1: train loss"), sweeper, "the end of epoch 1")
    pid = submitit_task_pid(sweep / ".submitit")
    assert pid is not None, "found the job's process"
    os.kill(pid, signal.SIGUSR2)
    out, err = sweeper.communicate(timeout=300)
    assert sweeper.returncode == 0, err[-3000:]
    first_end = json.loads((job / "attempts/1/end.json").read_text())
    assert (first_end["status"], first_end["signal"]) == ("interrupted", "SIGUSR2")
    second = json.loads((job / "attempts/2/launch.json").read_text())
    assert second["resumed_at_step"] == first_end["global_step"]
    assert json.loads((job / "result.json").read_text())["status"] == "finished"

"""How a run behaves on a real machine: threads on shared cores, progress without a terminal, an
unreachable hub, one-line errors for the file system (issue 18)."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICK, run_cli

from ner.errors import UserError
from ner.report.runlog import Printer
from ner.run import cli

NO_HUB = {"HF_ENDPOINT": "http://127.0.0.1:9"}  # refused at once: nothing waits for a network


def without(*names: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in names}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def python(code: str, env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_openmp_threads_sleep_while_they_wait_unless_the_user_says_otherwise():
    # libgomp reads OMP_WAIT_POLICY when torch loads it; `import ner` comes first in every entry
    # point, and must not itself load torch before setting it.
    code = "import os, sys, ner; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    assert python(code, without("OMP_WAIT_POLICY")) == "PASSIVE False"
    assert python(code, without(OMP_WAIT_POLICY="ACTIVE")) == "ACTIVE False"


def test_progress_line_has_step_epoch_loss_lr_rate_elapsed_and_eta():
    from ner.report.runlog import progress_line

    line = progress_line(120, 6667, 0.0542, 3, 0.43121, 4.5e-5, 2.5, 32, 83.2)
    assert line == (
        "step 120/6667 (epoch 0.05/3), loss 0.4312, lr 4.50e-05, 80.0 samples/s, "
        "elapsed 0:01:23, ETA 0:43:39"
    )


def test_without_a_terminal_progress_is_a_line_every_log_every_steps(tmp_path):
    run = tmp_path / "run"
    args = [*QUICK, "trainer.progress=true", "trainer.log_every=3", "trainer.stop_after_steps=9"]
    out = run_cli([sys.executable, "-m", "ner.train", *args, f"hydra.run.dir={run}"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("step ")]
    assert [ln.split(" (")[0] for ln in lines] == ["step 3/60", "step 6/60", "step 9/60"]
    assert all(" samples/s, elapsed 0:" in ln and ", ETA 0:" in ln for ln in lines), lines
    assert "(epoch 0.10/2), loss " in lines[0]  # 30 steps per epoch
    assert [ln for ln in (run / "train.log").read_text().splitlines() if ln.startswith("step ")]
    assert lines == [
        ln for ln in (run / "train.log").read_text().splitlines() if ln.startswith("step ")
    ]


def test_a_hub_model_without_network_is_one_line_at_once_and_writes_nothing(tmp_path):
    # No HF_HUB_OFFLINE: without the precheck's one request this is a minute of retries.
    cmd = [sys.executable, "-m", "ner.train", "model.name_or_path=nobody/missing-model"]
    env = without("HF_HUB_OFFLINE", **NO_HUB)
    out = subprocess.run(
        [*cmd, f"hydra.run.dir={tmp_path}/r"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [
        "error: config: model.name_or_path=nobody/missing-model: not a local directory, not in "
        "the Hugging Face cache, and the hub http://127.0.0.1:9 cannot be reached ([Errno 111] "
        "Connection refused); give a local directory: model.name_or_path=DIR"
    ]
    assert "Retry" not in out.stdout and not (tmp_path / "r").exists()


def test_a_hub_dataset_without_network_is_one_line_at_once_and_writes_nothing(tmp_path):
    cmd = [sys.executable, "-m", "ner.train", "data=wikiann", f"hydra.run.dir={tmp_path}/r"]
    env = without("HF_HUB_OFFLINE", **NO_HUB)
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    [line] = out.stderr.splitlines()
    assert line.startswith("error: dataset unimelb-nlp/wikiann (he): cannot reach the Hugging Face")
    assert "data.name=DIR" in line and "Retry" not in out.stdout
    assert not (tmp_path / "r").exists()


def test_a_library_log_record_is_printed_once_under_hydras_job_logging():
    # huggingface_hub and datasets print through a stderr handler of their own; Hydra's job
    # logging (hydra/job_logging=stdout) gives the root logger a console: a record reached both.
    import datasets  # noqa: F401
    import huggingface_hub  # noqa: F401

    printed: list[str] = []

    class Console(logging.Handler):
        def emit(self, record):
            printed.append(f"console: {record.getMessage()}")

    root, console = logging.getLogger(), Console()
    root.addHandler(console)
    own = {name: logging.getLogger(name).handlers[0] for name in ("huggingface_hub", "datasets")}
    streams = {name: io.StringIO() for name in own}
    old = {name: handler.setStream(streams[name]) for name, handler in own.items()}
    try:
        cli.one_copy_of_library_logs()
        logging.getLogger("huggingface_hub.file_download").warning("Retrying in 1s")
        logging.getLogger("datasets.load").warning("a datasets record")
    finally:
        root.removeHandler(console)
        for name, handler in own.items():
            handler.setStream(old[name])
    assert streams["huggingface_hub"].getvalue() == "Retrying in 1s\n"
    assert streams["datasets"].getvalue() == "a datasets record\n"
    assert printed == []


def test_a_full_disk_at_a_train_log_line_is_one_line(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    (tmp_path / "train.log").symlink_to("/dev/full")  # every write: ENOSPC
    say = Printer(tmp_path, True)
    say.open()  # the run was accepted: lines go to train.log as they come
    with pytest.raises(UserError) as full:
        say("epoch 1: ...")
    assert str(full.value) == (
        f"log {tmp_path / 'train.log'}: cannot append (no space left); free some space and run "
        f"again with hydra.run.dir={tmp_path} to resume from its last checkpoint"
    )


def test_a_multirun_with_failed_jobs_is_one_line_per_job_and_exit_2(tmp_path):
    # Both jobs are refused at run time (trainer.resume=never over a checkpoint), after Hydra
    # started them: each says so in one line, the second still runs, and the sweep exits 2.
    sweep = tmp_path / "sweep"
    for job in ("0", "1"):
        (sweep / job / "checkpoints").mkdir(parents=True)
        (sweep / job / "checkpoints" / "last.pt").write_bytes(b"not read")
    args = [*QUICK, "trainer.resume=never", "seed=1,2", f"hydra.sweep.dir={sweep}"]
    out = run_cli([sys.executable, "-m", "ner.train", "-m", *args], tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [
        f"error: job {j} ({sweep / j}): run dir {sweep / j} already holds a checkpoint "
        f"({sweep / j / 'checkpoints/last.pt'}); with trainer.resume=never it would be "
        "overwritten: choose another hydra.run.dir, or trainer.resume=auto"
        for j in ("0", "1")
    ]

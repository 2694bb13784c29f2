"""One owner per run directory: the lock refuses a live holder, names it, and outlives no one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ner.errors import UserError
from ner.run import lock as ownership
from ner.run.lock import LOCK_NAME, Lock, RunDirBusy, job_identity

HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from ner.run.lock import Lock\n"
    "Lock(Path(sys.argv[1])).acquire()\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
)


@pytest.fixture
def holder(tmp_path):
    """Another process holding tmp_path/run (its own job): yields the Popen."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_live_holder_is_named_and_the_second_run_refused(tmp_path, holder):
    with pytest.raises(RunDirBusy) as refused:
        Lock(tmp_path / "run").acquire()
    message = str(refused.value)
    assert f"pid {holder.pid} on host {socket.gethostname()}, started " in message
    assert "in use by another run" in message and LOCK_NAME in message
    assert json.loads((tmp_path / "run" / LOCK_NAME).read_text())["pid"] == holder.pid


def test_a_holder_killed_with_sigkill_does_not_block_the_next_run(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock = Lock(tmp_path / "run").acquire()
    try:
        assert lock.previous is not None and lock.previous.pid == holder.pid
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    finally:
        lock.release()
    assert not lock.path.exists()


def write_lock(run: Path, **fields) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    me = ownership.Holder.me()
    record = {**me.__dict__, "job": "some other job", "token": "theirs", **fields}
    path = run / LOCK_NAME
    path.write_text(json.dumps(record))
    return path


def test_a_reused_pid_is_not_the_holder(tmp_path):
    # Our own pid runs, but not the process that started at the recorded time.
    path = write_lock(tmp_path, pid=os.getpid(), pid_start=1)
    assert ownership.lock_is_stale(path)
    lock = Lock(tmp_path).acquire()
    try:
        assert lock.previous.token == "theirs" and lock.previous.pid_start == 1
        assert lock.held()
    finally:
        lock.release()
    # The same pid recorded with the start time it really has is alive: the lock is refused.
    write_lock(tmp_path, pid=os.getpid())
    with pytest.raises(RunDirBusy, match=f"pid {os.getpid()} on host"):
        Lock(tmp_path).acquire()


def test_a_holder_on_another_host_lives_while_its_heartbeat_is_fresh(tmp_path):
    path = write_lock(tmp_path, host="node-elsewhere", pid=1)
    with pytest.raises(RunDirBusy, match="pid 1 on host node-elsewhere"):
        Lock(tmp_path).acquire()
    old = time.time() - ownership.STALE_AFTER_S - 5
    os.utime(path, (old, old))
    lock = Lock(tmp_path).acquire()
    assert lock.previous.host == "node-elsewhere"
    lock.release()


def test_the_same_job_takes_its_lock_over(tmp_path, holder):
    # A torchrun restart or a Slurm requeue: another live process, but the same job identity.
    record = json.loads((tmp_path / "run" / LOCK_NAME).read_text())
    record["job"] = job_identity()
    (tmp_path / "run" / LOCK_NAME).write_text(json.dumps(record))
    lock = Lock(tmp_path / "run").acquire()
    assert lock.previous.pid == holder.pid
    lock.release()


def test_heartbeat_touches_the_lock_and_release_removes_only_our_own(tmp_path, monkeypatch):
    monkeypatch.setattr(ownership, "HEARTBEAT_S", 0.05)
    lock = Lock(tmp_path).acquire()
    old = time.time() - 1000
    os.utime(lock.path, (old, old))
    deadline = time.time() + 5
    while lock.path.stat().st_mtime < time.time() - 100 and time.time() < deadline:
        time.sleep(0.02)
    assert lock.path.stat().st_mtime > time.time() - 100, "the heartbeat touched the lock"
    successor = json.loads(lock.path.read_text()) | {"token": "successor"}
    lock.path.write_text(json.dumps(successor))  # another run took the directory over
    with pytest.raises(UserError, match="no longer holds"):
        lock.ensure()
    lock.release()
    assert json.loads(lock.path.read_text())["token"] == "successor"


@pytest.mark.parametrize(
    "environ,expected",
    [
        ({"SLURM_JOB_ID": "17", "SLURM_STEP_ID": "0"}, "slurm job 17 step 0"),
        (
            {
                "SLURM_JOB_ID": "18",
                "SLURM_STEP_ID": "2",
                "SLURM_ARRAY_JOB_ID": "10",
                "SLURM_ARRAY_TASK_ID": "3",
            },
            "slurm job 10_3 step 2",
        ),
        ({"TORCHELASTIC_RUN_ID": "card-run"}, "torchrun job card-run"),
    ],
)
def test_job_identity_survives_restarts_and_requeues(environ, expected):
    assert job_identity(environ) == expected


def test_job_identity_of_a_plain_process_and_of_torchrun_without_an_id():
    host = socket.gethostname()
    assert job_identity({}).startswith(f"process {host}:{os.getpid()}@")
    assert job_identity({"TORCHELASTIC_RUN_ID": "none"}).startswith(
        f"torchrun agent {host}:{os.getppid()}@"
    )

"""One owner per run directory: a lock file that names its holder and dies with it.

A run takes `<run dir>/.lock` before it writes anything there (rank 0 for the whole job, so a
job on several nodes sharing a file system takes it once). The file is created atomically (a
hard link of a complete temporary file, so no reader sees it half written) and holds who holds
it: the job, host, pid and start time, the command, and a random token.

A second run that finds the lock is refused at once, naming the holder, unless the holder is:
- the same job (`job_identity`): a worker restarted by `torchrun --max-restarts`, or a Slurm job
  step requeued after preemption. It takes the lock over;
- dead. On the same host a holder is dead when its pid no longer runs the process that started
  at the recorded time (/proc; a reused pid does not count as alive). On another host (a shared
  file system) the holder touches the lock every HEARTBEAT_S seconds from a background thread; a
  lock untouched for STALE_AFTER_S seconds belongs to a dead job (kill -9, a lost node).

Before each checkpoint the holder checks that the lock is still its own (`Lock.ensure`), so a
run that was wrongly declared dead (suspended for minutes) stops instead of writing beside its
successor.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from ner import atomic
from ner.distributed.slurm import job_step
from ner.errors import UserError

LOCK_NAME = ".lock"
HEARTBEAT_S = 15.0
STALE_AFTER_S = 120.0


class RunDirBusy(UserError):
    """Another live run holds the run directory."""


def process_start(pid: int) -> int | None:
    """The start time of a process in clock ticks since boot (Linux /proc), None if unknown."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def job_identity(environ=os.environ) -> str:
    """What stays the same when a job's processes are restarted or requeued.

    A Slurm job step (srun) keeps its job id and step id across a requeue; a torchrun job keeps
    its rendezvous id across `--max-restarts` (with `--standalone` a random one per torchrun);
    torchrun without a rendezvous id keeps its agent process. Anything else is this process.
    """
    host = socket.gethostname()
    if (slurm_step := job_step(environ)) is not None:
        job, step = slurm_step
        return f"slurm job {job} step {step}"
    run_id = environ.get("TORCHELASTIC_RUN_ID")
    if run_id and run_id != "none":
        return f"torchrun job {run_id}"
    pid = os.getppid() if run_id is not None else os.getpid()
    kind = "torchrun agent" if run_id is not None else "process"
    return f"{kind} {host}:{pid}@{process_start(pid)}"


@dataclass(frozen=True)
class Holder:
    job: str
    host: str
    pid: int
    pid_start: int | None
    started: str
    command: str
    token: str

    @classmethod
    def me(cls) -> Holder:
        return cls(
            job=job_identity(),
            host=socket.gethostname(),
            pid=os.getpid(),
            pid_start=process_start(os.getpid()),
            started=dt.datetime.now().isoformat(timespec="seconds"),
            command=" ".join(sys.argv),
            token=uuid.uuid4().hex,
        )

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started} ({self.job})"


def _read(path: Path) -> tuple[bytes, Holder | None]:
    """The lock's bytes and holder; (b"", None) when it vanished, holder None when unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return b"", None
    try:
        return raw, Holder(**json.loads(raw))
    except (ValueError, TypeError):
        return raw, None


def _alive(holder: Holder | None, path: Path) -> bool:
    """Is the holder's process still running (see the module docstring)?"""
    if holder is not None and holder.host == socket.gethostname():
        if holder.pid_start is not None:  # /proc was there: the pid must run the same process
            return process_start(holder.pid) == holder.pid_start
        try:
            os.kill(holder.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age < STALE_AFTER_S


def lock_is_stale(path: Path) -> bool:
    """Does the lock at `path` belong to a run that is no longer alive?"""
    seen, holder = _read(path)
    return bool(seen) and not _alive(holder, path)


def _link_new(path: Path, data: bytes) -> bool:
    """Create `path` holding `data` only if it does not exist; False if it does."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}")
    tmp.write_bytes(data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def _take_over(path: Path, seen: bytes, data: bytes) -> bool:
    """Replace the lock holding `seen` by one holding `data`; False if someone else got there."""
    stale = path.with_name(f"{path.name}.stale.{uuid.uuid4().hex}")
    try:
        os.rename(path, stale)
    except FileNotFoundError:
        return False
    if stale.read_bytes() != seen:  # a new holder came between our read and the rename
        with contextlib.suppress(FileExistsError):
            os.link(stale, path)
        stale.unlink()
        return False
    stale.unlink()
    return _link_new(path, data)


class Lock:
    """The run directory's lock, held by this process (see the module docstring)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK_NAME
        self.holder = Holder.me()
        self.previous: Holder | None = None  # a dead or restarted holder this lock replaced
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self) -> Lock:
        """Take the lock, or refuse in one line: another live run holds it, or the directory
        cannot be written (read-only, permissions, a full disk)."""
        try:
            return self._acquire()
        except OSError as e:
            if e.errno in atomic.NO_SPACE:
                raise atomic.no_space(self.path, None, "run dir lock") from None
            raise atomic.cannot_write(self.path, e, "run dir lock") from None

    def _acquire(self) -> Lock:
        data = json.dumps(asdict(self.holder), indent=2).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            if _link_new(self.path, data):
                break
            seen, holder = _read(self.path)
            if not seen:
                continue  # released between our two looks
            same_job = holder is not None and holder.job == self.holder.job
            if not same_job and _alive(holder, self.path):
                who = holder.describe() if holder else "an unreadable lock"
                raise RunDirBusy(
                    f"run dir {self.path.parent} is in use by another run: {who}; lock "
                    f"{self.path}. Choose another hydra.run.dir, or wait for that run to end"
                )
            if _take_over(self.path, seen, data):
                self.previous = holder
                break
            time.sleep(0.05)
        else:
            raise RunDirBusy(f"run dir {self.path.parent}: could not take {self.path}")
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="ner-lock")
        self._beat.start()
        return self

    def held(self) -> bool:
        _, holder = _read(self.path)
        return holder is not None and holder.token == self.holder.token

    def ensure(self) -> None:
        """Raise if another run has taken the directory over (it judged this one dead)."""
        if not self.held():
            _, holder = _read(self.path)
            who = holder.describe() if holder else "nobody"
            raise UserError(
                f"run dir {self.path.parent}: this run no longer holds {self.path} (now: {who}); "
                "it stops without writing, so the two runs do not mix their files"
            )

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            if self.held():
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.held():
            self.path.unlink()

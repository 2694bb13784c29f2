"""The run directory: one per job, the same on every rank, never silently reused.

Hydra names the run directory when each process starts (`hydra.run.dir`). Its default stamp,
`${now:...}`, is read separately by every rank of a torchrun job and can differ by a second, so
each rank would write its own directory. `${ner_run_stamp:}` instead gives every process of one
job the same stamp:
- `NER_RUN_STAMP` when set (launchers and scripts that want to pin it);
- under torchrun on one node: the start time of the torchrun agent, the parent of every local
  worker (so a restarted worker, `--max-restarts`, finds the same directory and resumes);
- under torchrun on several nodes: the rendezvous id (`--rdzv-id`), the only name all nodes share;
- otherwise (one plain process): now.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from ner.errors import UserError

STAMP_FORMAT = "%Y-%m-%d/%H-%M-%S"


def _process_start(pid: int) -> dt.datetime | None:
    """Start time of a process, from /proc (Linux); None where /proc is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return dt.datetime.fromtimestamp(boot + start_ticks / os.sysconf("SC_CLK_TCK"))


def run_stamp(environ=os.environ) -> str:
    """The same string on every process of one job (see the module docstring)."""
    if environ.get("NER_RUN_STAMP"):
        return environ["NER_RUN_STAMP"]
    if "TORCHELASTIC_RUN_ID" not in environ:
        return dt.datetime.now().strftime(STAMP_FORMAT)
    world = int(environ.get("WORLD_SIZE", 1))
    local_world = int(environ.get("LOCAL_WORLD_SIZE", world))
    if world > local_world:  # several nodes
        run_id = environ["TORCHELASTIC_RUN_ID"]
        if run_id in ("", "none"):
            raise UserError(
                "run dir: a multi-node torchrun job needs a shared name: pass --rdzv-id=NAME to "
                "torchrun or hydra.run.dir=DIR to ner.train"
            )
        return f"torchrun/{run_id}"
    agent_start = _process_start(os.getppid())
    if agent_start is None:
        return f"torchrun/{environ['TORCHELASTIC_RUN_ID']}"
    return agent_start.strftime(STAMP_FORMAT)


def git_commit() -> str | None:
    """The commit of the code that runs (with '-dirty' when the checkout has changes)."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("-dirty" if dirty else "")


def framework_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for label, pkg in [
        ("Transformers", "transformers"),
        ("Pytorch", "torch"),
        ("Datasets", "datasets"),
        ("Tokenizers", "tokenizers"),
        ("seqeval", "seqeval"),
        ("hydra-core", "hydra-core"),
    ]:
        try:
            out[label] = version(pkg)
        except PackageNotFoundError:
            out[label] = "not installed"
    return out


def write_json(path: Path, obj) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_run_info(run_dir: Path, world_size: int) -> None:
    write_json(
        run_dir / "run_info.json",
        {
            "git_commit": git_commit(),
            "world_size": world_size,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "versions": framework_versions(),
            "start_time": dt.datetime.now().isoformat(timespec="seconds"),
        },
    )


def output_subdir() -> str | None:
    """Hydra's `.hydra/` config copies: written by rank 0 only (other ranks share the directory)."""
    return ".hydra" if int(os.environ.get("RANK", 0)) == 0 else None


def record_failure(run_dir: Path, env, error: BaseException) -> None:
    """Write error.json on rank 0 so reports show the job as failed, with its reason."""
    if not env.is_main or not run_dir.is_dir():
        return
    message = str(error) or type(error).__name__
    if isinstance(error, KeyboardInterrupt):
        message = "interrupted (KeyboardInterrupt)"
    write_json(
        run_dir / "error.json",
        {"status": "failed", "type": type(error).__name__, "message": message},
    )


class Printer:
    """Rank 0's voice: prints and appends to <run dir>/train.log; silent on other ranks."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        self.path = run_dir / "train.log"

    def __call__(self, line: str) -> None:
        if not self.enabled:
            return
        print(line, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def progress(self, total: int, initial: int, desc: str, enabled: bool):
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            initial=initial,
            desc=desc,
            disable=None if self.enabled and enabled else True,  # None: off when not a terminal
            dynamic_ncols=True,
            leave=False,
        )

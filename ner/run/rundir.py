"""The run directory: its owner, where a run starts in it, and a record of each attempt.

Its name comes from `${ner_run_stamp:}` (ner/run/stamp.py). A run first takes the directory
(ner/run/lock.py), then decides where it starts: fresh, from a checkpoint, or not at all (a
finished run with nothing left to do; ner/run/start.py). A run that is refused (another run holds
the directory, `trainer.resume=never` over a checkpoint, a checkpoint made with another
configuration) changes no byte of the directory. An accepted run records its attempt before
anything else (the layout: ner/run/layout.py).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ner import checkpoint, distributed
from ner.atomic import human, remove_orphans, write_json, write_text
from ner.errors import UserError
from ner.run import layout
from ner.run.lock import Lock
from ner.run.preemption import Interrupted
from ner.run.provenance import framework_versions, git_commit, launch_command
from ner.run.start import Start, decide, same_data


class RunDir:
    """The run directory of this job, held for the length of a `with` block (rank 0 holds it).

    Leaving the block with an exception after the run was accepted records how the attempt
    ended (failed, or interrupted by a signal) in error.json and attempts/<k>/end.json.
    """

    def __init__(self, path: Path, env: distributed.Env):
        self.path = Path(path)
        self.env = env
        self.lock: Lock | None = None
        self.attempt: Path | None = None  # attempts/<k> once accepted (rank 0)

    def __enter__(self) -> RunDir:
        problem: UserError | None = None
        self.made = _made_for(self.path)  # removed again when the run is not accepted
        if self.env.is_main:
            try:
                self.lock = Lock(self.path).acquire()
            except UserError as e:  # in use by another run, or not writable
                problem = e
        problem = distributed.broadcast_object(problem, self.env)
        if problem:
            raise problem
        return self

    def __exit__(self, kind, error, tb) -> None:
        try:
            if error is not None and self.attempt is not None:
                self._record_stop(error)
        finally:
            if self.lock is not None:
                self.lock.release()
                if self.attempt is None:
                    _remove_empty(self.made)

    def start(self, cfg) -> Start:
        """Decide where the run starts (on rank 0; every rank gets the answer) or refuse it."""
        decision: Start | UserError | None = None
        shared = None
        if self.env.is_main:
            try:
                decision = decide(cfg, self.path, self.env.world_size)
                shared = (decision.kind, decision.path, decision.result)
            except UserError as e:
                shared = decision = e
        shared = distributed.broadcast_object(shared, self.env)
        if isinstance(shared, UserError):
            raise shared
        if self.env.is_main:
            return decision
        kind, path, result = shared
        return Start(kind, path, checkpoint.load(path) if kind == "resume" else None, result)

    def accept(self, cfg, start: Start) -> None:
        """Record this attempt (rank 0); from here on the run writes into the directory."""
        if not self.env.is_main:
            return
        orphans = remove_orphans(self.path)  # left by a killed attempt (ner/atomic.py)
        if orphans:
            size = human(sum(n for _, n in orphans))
            names = ", ".join(str(p.relative_to(self.path)) for p, _ in orphans[:3])
            print(f"removed {len(orphans)} temporary files of a killed attempt ({size}): {names}")
        earlier = layout.attempts(self.path)
        k = int(earlier[-1].name) + 1 if earlier else 1
        self.attempt = self.path / "attempts" / str(k)
        me = self.lock.holder  # this process, as its lock names it
        info = {
            "attempt": k,
            "command": launch_command(),
            "host": me.host,
            "pid": me.pid,
            "job": me.job,
            "torchrun_restart": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)),
            "git_commit": git_commit(),
            "world_size": self.env.world_size,
            "versions": framework_versions(),
            "start_time": dt.datetime.now().isoformat(timespec="seconds"),
            "start": start.kind,
            "resumed_from": str(start.path) if start.path else None,
            "resumed_at_step": (start.checkpoint or {}).get("progress", {}).get("global_step"),
        }
        write_json(self.attempt / "launch.json", info)
        write_text(self.attempt / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        hydra = _hydra_files(cfg)
        if hydra:
            write_text(self.attempt / "overrides.yaml", hydra["overrides.yaml"])
            if not (self.path / ".hydra" / "config.yaml").exists():
                for name, text in hydra.items():
                    write_text(self.path / ".hydra" / name, text)
        if not (self.path / "run_info.json").exists():
            write_json(self.path / "run_info.json", info)
        # The last attempt's ending now belongs to that attempt alone.
        for name in ("result.json", "error.json"):
            old = self.path / name
            if old.exists():
                previous = self.path / "attempts" / str(k - 1) / "end.json"
                if k > 1 and not previous.exists():
                    os.replace(old, previous)
                else:
                    old.unlink()

    def check_data(self, cfg, start: Start, fingerprints: dict[str, str]) -> None:
        """Before accepting a resume: refuse it onto other data than its checkpoint's (rank 0
        decides; every rank gets the answer)."""
        problem = None
        if self.env.is_main:
            try:
                same_data(start, fingerprints, cfg.trainer.resume == "auto")
            except UserError as e:
                problem = e
        problem = distributed.broadcast_object(problem, self.env)
        if problem:
            raise problem

    def ensure_owned(self) -> None:
        """Before writing a checkpoint: raise if another run took the directory over (rank 0)."""
        if self.lock is not None:
            self.lock.ensure()

    def finished(self, result: dict) -> None:
        """The run ended normally: result.json, and the attempt's end (rank 0)."""
        if self.env.is_main:
            end = {**result, "end_time": dt.datetime.now().isoformat(timespec="seconds")}
            write_json(self.attempt / "end.json", end)
            write_json(self.path / "result.json", result)

    def stopped_after_steps(self, step: int) -> None:
        """The run was cut short on purpose at `step` (trainer.stop_after_steps): the attempt's
        end.json says so (rank 0), so that reports show it stopped, not running
        (ner/run/status.py). No error.json: nothing went wrong, and the same command resumes."""
        if self.env.is_main:
            end = {
                "status": "stopped",
                "global_step": step,
                "message": f"stopped at step {step} (trainer.stop_after_steps)",
                "end_time": dt.datetime.now().isoformat(timespec="seconds"),
            }
            write_json(self.attempt / "end.json", end)

    def _record_stop(self, error: BaseException) -> None:
        if not self.env.is_main:
            return
        if isinstance(error, Interrupted):
            record = {"status": "interrupted", **error.record()}
        else:
            message = str(error) or type(error).__name__
            if isinstance(error, KeyboardInterrupt):
                message = "interrupted (KeyboardInterrupt)"
            record = {"status": "failed", "type": type(error).__name__, "message": message}
        record["end_time"] = dt.datetime.now().isoformat(timespec="seconds")
        try:
            write_json(self.attempt / "end.json", record)
            write_json(self.path / "error.json", record)
        except (OSError, UserError) as e:  # a full disk: say so, keep the original error
            print(f"warning: could not record how the run ended: {e}", file=sys.stderr)


def _made_for(path: Path) -> list[Path]:
    """The directories that are this run's to remove if it is refused, deepest first: the run
    dir when it is missing or empty (Hydra makes it just before the run starts), and each parent
    that holds nothing else, up to (not including) the working directory or its parents."""
    if path.is_dir() and any(path.iterdir()):
        return []
    here = Path.cwd().resolve()
    made, child = [path], path.resolve()
    for parent in child.parents:
        if parent == here or parent in here.parents:
            break
        if parent.exists() and [p.resolve() for p in parent.iterdir()] not in ([], [child]):
            break
        made.append(parent)
        child = parent
    return made


def _remove_empty(made: list[Path]) -> None:
    """Remove the directories a refused run made, deepest first, while they are empty."""
    try:
        for directory in made:
            directory.rmdir()
    except OSError:  # not empty: another run wrote into it since
        pass


def _hydra_files(cfg) -> dict[str, str] | None:
    """Hydra's .hydra/ files for this launch, as Hydra writes them (None outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    return {
        "config.yaml": OmegaConf.to_yaml(cfg),
        "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra})),
        "overrides.yaml": OmegaConf.to_yaml(hydra.overrides.task),
    }

"""`ner-train`'s command line, around the Hydra entry point that ner/train.py holds.

A bad config is one line on stderr and exit status 2, before Hydra starts (ner/run/precheck.py:
`checked_command_line`). A job that ends early ends one way (`job_ended`). Exit statuses: 0
done (or nothing to do), 2 a user error (one line; in a multirun, one line per failed job, after
the other jobs ran), 75 interrupted by a signal after a checkpoint (run the same command to
resume; ner/run/preemption.py), whatever signals follow the first.

The loop does not live here: ner/train.py imports this module, never the other way round, so
`python -m ner.train` starts the loop's own module.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import OmegaConf

from ner import config, distributed
from ner.errors import EXIT_USER_ERROR, UserError, error_line, exit_on_error
from ner.run.preemption import EXIT_INTERRUPTED, Interrupted, StopRequests
from ner.run.stamp import run_stamp
from ner.run.sweep import record_refused

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
config.register()
OmegaConf.register_new_resolver("ner_run_stamp", run_stamp, use_cache=True, replace=True)


failed_jobs: list[int] = []  # jobs of this process's multirun that ended with a UserError


class JobFailed(CompactHydraException):
    """A multirun job's UserError, as one line, for launchers that run jobs elsewhere (Slurm)."""


def one_copy_of_library_logs() -> None:
    """huggingface_hub and datasets print their log records through a handler of their own
    (stderr); Hydra's job logging gives the root logger a console handler too, through which
    every record would be printed a second time."""
    for library in ("huggingface_hub", "datasets"):
        logging.getLogger(library).propagate = False


def job_started() -> Path:
    """In a Hydra job, before the loop: the job's run directory."""
    one_copy_of_library_logs()
    StopRequests.process_ends_with_run = True  # a second signal cannot change the exit status
    return Path(HydraConfig.get().runtime.output_dir)


def job_ended(error: Interrupted | UserError, env: distributed.Env | None) -> None:
    """A job stopped by a signal (exit 75) or refused (one line, exit 2; in a multirun the
    other jobs run first). `env` is None when the process group could not be joined."""
    speak = env is None or env.is_main
    if isinstance(error, Interrupted):
        if speak:
            print(error, file=sys.stderr, flush=True)
        error.hand_over()  # submitit's handler requeues the Slurm job
        sys.exit(EXIT_INTERRUPTED)
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        run_dir = hydra_cfg.runtime.output_dir
        line = error_line(f"job {hydra_cfg.job.num} ({run_dir}): {error}")
        # A refused job leaves no directory: the sweep's record keeps its settings and reason.
        record_refused(
            hydra_cfg.sweep.dir, Path(run_dir), hydra_cfg.job.num, hydra_cfg.overrides.task, error
        )
        if hydra_cfg.launcher._target_ != BASIC_LAUNCHER:
            raise JobFailed(line) from None  # the launcher reports it and runs the others
        print(line, file=sys.stderr, flush=True)  # in this process: `command` exits 2 at the end
        failed_jobs.append(hydra_cfg.job.num)
        return
    sys.exit(exit_on_error(error, speak=speak))


def command(hydra_main) -> None:
    """Console script `ner-train`: check the command line, then run Hydra's `hydra_main`."""
    from ner.run.precheck import HYDRA_FLAGS, precheck

    if not HYDRA_FLAGS & {a.split("=")[0] for a in sys.argv[1:]}:  # those modes are Hydra's
        problem = precheck(sys.argv[1:], CONF_DIR)
        if problem:
            sys.exit(exit_on_error(problem, speak=distributed.env_from_environ()["rank"] == 0))
    hydra_main()
    if failed_jobs:  # a multirun whose other jobs ran
        sys.exit(EXIT_USER_ERROR)

"""`ner-train` (and `python -m ner.train`): the command line and Hydra's entry point.

A bad config is one line on stderr and exit status 2, before Hydra starts (ner/run/precheck.py).
`hydra_main` joins the process group, trains (ner/train.py) and tears down. Exit statuses: 0
done (or nothing to do), 2 a user error (one line; in a multirun, one line per failed job, after
the other jobs ran), 75 interrupted by a signal after a checkpoint (run the same command to
resume; ner/run/preemption.py), whatever signals follow the first.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ner import config, distributed
from ner.errors import EXIT_USER_ERROR, UserError, error_line, exit_on_error
from ner.run.preemption import EXIT_INTERRUPTED, Interrupted, StopRequests
from ner.run.stamp import run_stamp
from ner.run.sweep import record_refused
from ner.train import train

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


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    one_copy_of_library_logs()
    StopRequests.process_ends_with_run = True  # a second signal cannot change the exit status
    env = None
    try:
        env = distributed.setup(cfg.trainer.device)
        return train(cfg, env, run_dir)
    except Interrupted as e:
        if env is None or env.is_main:
            print(e, file=sys.stderr, flush=True)
        e.hand_over()  # submitit's handler requeues the Slurm job
        sys.exit(EXIT_INTERRUPTED)
    except UserError as e:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            line = error_line(f"job {hydra_cfg.job.num} ({run_dir}): {e}")
            record_refused(
                hydra_cfg.sweep.dir, run_dir, hydra_cfg.job.num, hydra_cfg.overrides.task, e
            )
            if hydra_cfg.launcher._target_ != BASIC_LAUNCHER:
                raise JobFailed(line) from None  # the launcher reports it and runs the others
            print(line, file=sys.stderr, flush=True)  # in this process: main() exits 2 at the end
            failed_jobs.append(hydra_cfg.job.num)
            return None
        sys.exit(exit_on_error(e, speak=env is None or env.is_main))
    finally:
        distributed.teardown()


def main() -> None:
    """Console script `ner-train`: a bad config is one line on stderr and exit status 2."""
    from ner.run.precheck import HYDRA_FLAGS, precheck

    if not HYDRA_FLAGS & {a.split("=")[0] for a in sys.argv[1:]}:  # those modes are Hydra's
        problem = precheck(sys.argv[1:], CONF_DIR)
        if problem:
            sys.exit(exit_on_error(problem, speak=distributed.env_from_environ()["rank"] == 0))
    hydra_main()
    if failed_jobs:  # a multirun whose other jobs ran
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    # Run through the importable module, not `__main__`, so launchers that pickle the task
    # function (submitit for Slurm) pickle a reference to ner.run.cli.hydra_main.
    from ner.run.cli import main as _main

    _main()

"""`ner-train` (and `python -m ner.train`): the command line and Hydra's entry point.

A bad config is one line on stderr and exit status 2, before Hydra starts (ner/checks.py precheck).
`hydra_main` joins the process group, trains (ner/train.py) and tears down. Exit statuses: 0
done (or nothing to do), 2 a user error (one line), 75 interrupted by a signal after a checkpoint
(run the same command to resume; ner/preemption.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ner import config, distributed, rundir
from ner.errors import UserError
from ner.preemption import EXIT_INTERRUPTED, Interrupted
from ner.train import train

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
config.register()
OmegaConf.register_new_resolver("ner_run_stamp", rundir.run_stamp, use_cache=True, replace=True)


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> float | None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
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
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # Hydra marks this job failed and runs the others
        if env is None or env.is_main:
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
        sys.exit(2)
    finally:
        distributed.teardown()


def main() -> None:
    """Console script `ner-train`: a bad config is one line on stderr and exit status 2."""
    from ner.checks import HYDRA_FLAGS, precheck

    if not HYDRA_FLAGS & {a.split("=")[0] for a in sys.argv[1:]}:  # those modes are Hydra's
        problem = precheck(sys.argv[1:], CONF_DIR)
        if problem:
            if distributed.env_from_environ()["rank"] == 0:
                print(f"error: {problem}", file=sys.stderr)
            sys.exit(2)
    hydra_main()


if __name__ == "__main__":
    # Run through the importable module, not `__main__`, so launchers that pickle the task
    # function (submitit for Slurm) pickle a reference to ner.cli.hydra_main.
    from ner.cli import main as _main

    _main()

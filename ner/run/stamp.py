"""The run directory's name: one stamp for every process of a job (`${ner_run_stamp:}`).

Hydra names the run directory when each process starts (`hydra.run.dir`). Its default stamp,
`${now:...}`, is read separately by every rank of a job and can differ by a second, so each rank
would write its own directory. `run_stamp` gives every process of a job the same stamp:
`NER_RUN_STAMP` when set; under torchrun on one node the start time of the torchrun agent (a
restarted worker finds the same directory); under torchrun on several nodes the rendezvous id;
under srun without torchrun `slurm/<job id>.<step id>` (a requeued job finds its directory
again); otherwise now. A stamp made from a start time ends with the id of the process that
started then (the job itself, or its torchrun agent): jobs started in the same second (`for s in
1 2 3; do ner-train seed=$s & done`) each get their own directory. ner/run/cli.py registers it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from ner.distributed import slurm
from ner.errors import UserError
from ner.run.lock import process_start

STAMP_FORMAT = "%Y-%m-%d/%H-%M-%S"


def run_stamp(environ=os.environ) -> str:
    """The same string on every process of one job (see the module docstring)."""
    if environ.get("NER_RUN_STAMP"):
        return environ["NER_RUN_STAMP"]
    if "TORCHELASTIC_RUN_ID" not in environ:
        if (slurm_step := slurm.job_step(environ)) is not None:
            job, step = slurm_step
            return f"slurm/{job}.{step}"
        return f"{dt.datetime.now().strftime(STAMP_FORMAT)}-{os.getpid()}"
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
    agent = os.getppid()
    ticks = process_start(agent)
    if ticks is None:
        return f"torchrun/{environ['TORCHELASTIC_RUN_ID']}"
    boot = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime")
    )
    agent_start = dt.datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"))
    return f"{agent_start.strftime(STAMP_FORMAT)}-{agent}"

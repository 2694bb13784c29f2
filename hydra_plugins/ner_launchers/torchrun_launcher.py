"""A Hydra launcher that runs every job of a sweep as its own `torchrun` command.

    python -m ner.train -m hydra/launcher=torchrun hydra.launcher.nproc_per_node=2 \
        optim.lr=1e-5,3e-5 seed=1,2

runs the four jobs one after another; each is `python -m torch.distributed.run --nproc_per_node 2
... -m ner.train <the job's overrides> hydra.run.dir=<sweep dir>/<job num> hydra.job.num=<num>`, so
the training program sees an ordinary single run (RUN mode) under torchrun and writes into exactly
the directory Hydra's basic launcher would have used. A job's return value is the "best" field of
its `result.json`; a job that exits non-zero is reported as failed (with the message of its
`error.json`) and the sweep goes on with the next job. Hydra then exits non-zero after the sweep.
A job refused before its run was accepted writes nothing in its directory: its one `error: ` line
(its stderr passes through here) is recorded in the sweep directory (ner/run/sweep.py), where
ner-report finds it.

Why not the other way round, one torchrun around the whole sweep
(`torchrun --nproc_per_node 2 -m ner.train -m optim.lr=1e-5,3e-5`)? Every rank would run Hydra's
multirun itself: each parses the sweep, resolves `${now:...}` in its own process (the ranks can
land in different sweep directories a second apart), writes `multirun.yaml`, and runs the jobs in
a loop inside one process, creating and destroying a process group per job. The ranks only stay in
step while every job succeeds on every rank: when one job raises on one rank, that rank moves on to
the next job while the others wait in the failed job's collectives (a hang until the timeout), and
torchrun's agent tears down all workers as soon as one exits with an error, ending the whole sweep.
With this launcher Hydra's sweep lives in one process and each job gets a fresh process group,
fresh ports and its own failure.

Config keys (`hydra.launcher.*`): TorchrunLauncherConf below, each with its default and meaning.
"""

# No `from __future__ import annotations`: Hydra executes plugin modules without registering them in
# sys.modules, and dataclasses cannot resolve postponed annotations of such a module.
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.errors import CompactHydraException
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from ner.atomic import write_json
from ner.errors import UserError
from ner.run.precheck import quote_override_value
from ner.run.sweep import record_refused

log = logging.getLogger(__name__)


@dataclass
class TorchrunLauncherConf:
    """Every `hydra.launcher.<key>` of hydra/launcher=torchrun, its one default and meaning."""

    _target_: str = "hydra_plugins.ner_launchers.torchrun_launcher.TorchrunLauncher"
    # Worker processes per node (torchrun --nproc_per_node): the number of GPUs, or of CPU
    # processes for gloo.
    nproc_per_node: int = 1
    # Number of nodes, or an elastic range "MIN:MAX" (torchrun --nnodes). With more than one node,
    # run the same multirun command (with a fixed hydra.sweep.dir on a shared file system) on
    # every node.
    nnodes: str = "1"
    # This node's rank (torchrun --node_rank); used by the static rendezvous, c10d assigns ranks.
    node_rank: int = 0
    # Rendezvous backend (torchrun --rdzv_backend); ignored on one node with port 0.
    rdzv_backend: str = "c10d"
    # host:port of the rendezvous (torchrun --rdzv_endpoint). Port 0 on one node means
    # --standalone: torchrun picks a free port for every job. Several nodes need a host and port
    # all of them reach.
    rdzv_endpoint: str = "localhost:0"
    # Restarts of the worker group after a failure before the job counts as failed (torchrun
    # --max_restarts); a restarted group resumes from the run's last checkpoint.
    max_restarts: int = 0
    # Python module to run (torchrun -m); null: the module of the app that runs the sweep.
    module: str | None = None
    # Extra environment variables for the job's processes, on top of this process's
    # environment; add one with +hydra.launcher.env.OMP_NUM_THREADS=4.
    env: dict[str, str] = field(default_factory=dict)


# The schema is stored as `torchrun_schema` and conf/hydra/launcher/torchrun.yaml extends it (Hydra's
# recommended pattern): a YAML file and a stored config of the same name would trigger Hydra's
# deprecated automatic schema matching. Apps without that YAML select `hydra/launcher=torchrun_schema`.
ConfigStore.instance().store(
    group="hydra/launcher", name="torchrun_schema", node=TorchrunLauncherConf
)

# Hydra overrides of the sweeping process that must not reach a job: the job runs in RUN mode in
# the directory chosen here, and launching/sweeping is this process's business.
_PARENT_ONLY = re.compile(
    r"^~?\+{0,2}hydra([./])(launcher|sweeper|sweep|mode|run\.dir|job\.(num|id))\b"
)


def program_args(module: str | None, task_function: Callable[..., Any] | None) -> list[str]:
    """What torchrun should run: `["-m", module]`, or `[script.py]` for an app run as a script.

    Default: the module the task function lives in (`ner.train` under the `ner-train` script),
    else the module given to `python -m`, else the script file given to `python`.
    """
    if module:
        return ["-m", module]
    task_module = getattr(task_function, "__module__", None)
    if task_module and task_module != "__main__":
        return ["-m", task_module]
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        return ["-m", spec.name]
    script = Path(sys.argv[0])
    if script.suffix == ".py" and script.is_file():
        return [str(script.resolve())]
    raise UserError(
        f"cannot tell which program to run under torchrun from sys.argv[0]={sys.argv[0]!r}; "
        "set hydra.launcher.module=<python module>"
    )


def torchrun_command(
    cfg: DictConfig | TorchrunLauncherConf,
    program: Sequence[str],
    job_args: Sequence[str],
    job_dir: str,
    job_num: int,
) -> list[str]:
    """The argv of one job: torchrun, its options, the program and the job's Hydra arguments."""
    nnodes = str(cfg.nnodes)
    _host, sep, port = str(cfg.rdzv_endpoint).rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"hydra.launcher.rdzv_endpoint={cfg.rdzv_endpoint!r} is not <host>:<port>")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", nnodes]
    cmd += ["--nproc_per_node", str(cfg.nproc_per_node), "--node_rank", str(cfg.node_rank)]
    if nnodes == "1" and int(port) == 0:
        # torchrun picks a free port for a store of its own, so back-to-back jobs never collide.
        cmd.append("--standalone")
    else:
        if int(port) == 0:
            raise UserError(
                f"hydra.launcher.rdzv_endpoint={cfg.rdzv_endpoint!r}: port 0 (a free port) only "
                f"works on one node, but nnodes={nnodes!r}; give the host and port all nodes reach"
            )
        # Every node runs the same sweep in the same order, so the job number names the rendezvous.
        cmd += ["--rdzv_backend", str(cfg.rdzv_backend), "--rdzv_endpoint", str(cfg.rdzv_endpoint)]
        cmd += ["--rdzv_id", f"hydra-job-{job_num}"]
    cmd += ["--max_restarts", str(cfg.max_restarts), *program, *job_args]
    cmd += [f"hydra.run.dir={quote_override_value(job_dir)}"]
    cmd += [f"hydra.job.num={job_num}", f"hydra.job.id={job_num}"]
    # Each job is one run: an experiment file that sets `hydra.mode: MULTIRUN` (a sweep defined
    # in YAML) must not start a nested sweep inside the job.
    cmd += ["hydra.mode=RUN"]
    return cmd


def job_hydra_args(hydra_cfg: DictConfig) -> list[str]:
    """The sweeping process's config choice and Hydra overrides that each job must repeat.

    `hydra_cfg` is the sweep's `hydra` node: --config-name, --config-dir, and its hydra.*
    overrides except those about launching and sweeping (`hydra/launcher=torchrun`, the sweep dir,
    the mode), which belong to this process only.
    """
    args = []
    if hydra_cfg.job.config_name is not None:
        args.append(f"--config-name={hydra_cfg.job.config_name}")
    for source in hydra_cfg.runtime.config_sources:
        if source.provider == "command-line" and source.schema == "file":
            args.append(f"--config-dir={source.path}")
    # Unresolved: an override such as `hydra.job.env_set.X=${oc.env:Y}` is passed on as written.
    overrides = OmegaConf.to_container(hydra_cfg.overrides.hydra, resolve=False)
    args += [o for o in overrides if not _PARENT_ONLY.match(o)]
    return args


def read_result(job_dir: Path) -> float | None:
    """The "best" value of a finished job's result.json (None when absent)."""
    path = job_dir / "result.json"
    if not path.is_file():
        log.warning(f"{path} does not exist; the job's return value is None")
        return None
    best = json.loads(path.read_text()).get("best")
    return None if best is None else float(best)


def record_failure(job_dir: Path, returncode: int, overrides: Sequence[str]) -> None:
    """Write error.json for a failed job that wrote none itself, so that reports see the failure.

    That is a job killed from outside (out of memory, SIGKILL) or one that failed before its
    program got going (a bad override, an import error): without this file it would look like a
    job still running. The overrides are included because such a job may have no `.hydra/`.
    """
    path = job_dir / "error.json"
    if path.exists():
        return
    error = {
        "status": "failed",
        "type": "ExitStatus",
        "message": f"torchrun exited with code {returncode} before the program wrote error.json",
        "overrides": list(overrides),
    }
    write_json(path, error)  # atomic: a report never reads half of it


def run_job(cmd: Sequence[str], env: dict[str, str]) -> tuple[int, str | None]:
    """Run one job's torchrun; its stderr goes on to ours as it comes (progress bars and all),
    and the last `error: ` line the program printed is kept: the one line of a UserError
    (ner.errors), which is all there is to know of a job refused before its run was accepted.
    Returns (exit status, that line without its `error: `, or None)."""
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    out = getattr(sys.stderr, "buffer", None)
    tail = b""
    while chunk := os.read(proc.stderr.fileno(), 1 << 16):
        if out is not None:
            out.write(chunk)
            out.flush()
        else:  # a stderr replaced by a text stream (tests capturing it)
            sys.stderr.write(chunk.decode("utf-8", errors="replace"))
        tail = (tail + chunk)[-(1 << 16) :]
    proc.stderr.close()
    returncode = proc.wait()
    lines = tail.decode("utf-8", errors="replace").splitlines()
    said = [line[len("error: ") :] for line in lines if line.startswith("error: ")]
    return returncode, said[-1] if said else None


def written_since(path: Path, started: float) -> bool:
    """Was `path` written by the job that started at `started` (not left by an earlier run)?"""
    try:
        return path.stat().st_mtime >= started - 1.0  # coarse file-system clocks
    except FileNotFoundError:
        return False


class JobFailed(CompactHydraException, RuntimeError):
    """A failed job. After the sweep Hydra reports the first one by its message alone (each was
    logged in one line when it failed), not by a traceback of the launcher."""


def job_failure(job_dir: Path, returncode: int) -> RuntimeError:
    """The exception reported for a job that exited with `returncode`."""
    message = f"job in {job_dir} failed: torchrun exited with code {returncode}"
    error_file = job_dir / "error.json"
    if error_file.is_file():
        try:
            error = json.loads(error_file.read_text())
            message += f"; {error.get('type', 'error')}: {error.get('message', '')}"
        except (OSError, ValueError) as e:
            message += f"; {error_file} is unreadable ({e})"
    return JobFailed(message)


class TorchrunLauncher(Launcher):
    def __init__(self, **params: Any) -> None:
        self.params = OmegaConf.structured(TorchrunLauncherConf(**params))
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> list[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        program = program_args(self.params.module, self.task_function)
        env = {**os.environ, **{str(k): str(v) for k, v in self.params.env.items()}}
        hydra_args = job_hydra_args(self.config.hydra)
        log.info(f"Launching {len(job_overrides)} jobs with torchrun: {' '.join(program)}")
        returns = []
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            returns.append(self._run_one(list(overrides), idx, program, hydra_args, env))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns

    def _run_one(
        self,
        overrides: list[str],
        idx: int,
        program: list[str],
        hydra_args: list[str],
        env: dict[str, str],
    ) -> JobReturn:
        assert self.config is not None and self.hydra_context is not None
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx
            sweep_config.hydra.job.num = idx
        # `${hydra:...}` in the sweep dir resolves against the config being set here, as in
        # hydra.core.utils.run_job.
        hydra_config = HydraConfig.instance()
        previous = hydra_config.cfg
        hydra_config.set_config(sweep_config)
        try:
            sweep_dir = Path(sweep_config.hydra.sweep.dir)
            job_dir = sweep_dir / str(sweep_config.hydra.sweep.subdir)
        finally:
            hydra_config.cfg = previous
        job_dir = job_dir.absolute()
        cmd = torchrun_command(self.params, program, [*hydra_args, *overrides], str(job_dir), idx)
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        log.debug(f"\t#{idx} command: {cmd}")
        # A directory that already held something belongs to an earlier run: a job refused there
        # (ner/run/rundir.py) must leave it as it was, so only a new directory gets our error.json.
        fresh_dir = not job_dir.exists() or not any(job_dir.iterdir())
        job_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        returncode, error_line = run_job(cmd, env)

        ret = JobReturn(
            overrides=overrides,
            cfg=OmegaConf.masked_copy(sweep_config, [k for k in sweep_config if k != "hydra"]),
            hydra_cfg=OmegaConf.masked_copy(sweep_config, "hydra"),
            working_dir=str(job_dir) if sweep_config.hydra.job.chdir else os.getcwd(),
            task_name=sweep_config.hydra.job.name,
        )
        if returncode == 0:
            try:
                ret.return_value = read_result(job_dir)
                ret.status = JobStatus.COMPLETED
            except (OSError, ValueError) as e:
                message = (
                    f"job in {job_dir} exited with code 0 but its result.json is unreadable: {e}"
                )
                ret.return_value, ret.status = RuntimeError(message), JobStatus.FAILED
        elif error_line is not None and not written_since(job_dir / "error.json", started):
            # Refused before its run was accepted: the job wrote nothing in its directory (and
            # removed the one made for it), so the refusal is recorded at the sweep's level.
            record_refused(sweep_dir, job_dir, idx, overrides, error_line)
            if fresh_dir and job_dir.is_dir() and not any(job_dir.iterdir()):
                job_dir.rmdir()  # made above, for a run that never was
            ret.return_value = JobFailed(f"job {idx} ({job_dir}) refused: {error_line}")
            ret.status = JobStatus.FAILED
        else:
            ret.return_value, ret.status = job_failure(job_dir, returncode), JobStatus.FAILED
            if fresh_dir:
                record_failure(job_dir, returncode, overrides)
        if ret.status == JobStatus.FAILED:
            log.error(str(ret._return_value))
        return ret

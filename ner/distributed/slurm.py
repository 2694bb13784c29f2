"""torch.distributed's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...) derived from Slurm's.

Under `srun` (and so under the submitit launcher, conf/hydra/launcher/slurm.yaml) every task is one
training process, but Slurm describes it with its own variables. `torch_env_from_slurm` translates
them so that the rest of the program reads the same variables as under torchrun:

    RANK              SLURM_PROCID
    WORLD_SIZE        SLURM_STEP_NUM_TASKS, else SLURM_NTASKS (else SLURM_NPROCS)
    LOCAL_RANK        SLURM_LOCALID
    LOCAL_WORLD_SIZE  this node's entry of SLURM_NTASKS_PER_NODE, else SLURM_STEP_TASKS_PER_NODE,
                      else SLURM_TASKS_PER_NODE ("4", "4(x2)", "2(x3),1")
    NODE_RANK         SLURM_NODEID
    MASTER_ADDR       MASTER_ADDR if set, else the first host of SLURM_STEP_NODELIST, else of
                      SLURM_JOB_NODELIST, else of SLURM_NODELIST ("node[01-03,07],gpu5" -> node01)
    MASTER_PORT       MASTER_PORT if set, else NER_MASTER_PORT, else 20000 + SLURM_JOB_ID % 10000

The step's variables come first because rank 0 runs on the first node of the step, which may be a
subset of the job's nodes. The port is a function of the job id alone, so every task of a job
agrees on it without talking, two jobs sharing a node differ unless their ids are 10000 apart, and
it stays below Linux's ephemeral range (32768+) where connections get their local ports.

Run the program through `srun`: in the batch script itself SLURM_PROCID=0 and SLURM_NTASKS is the
whole allocation, so a process started there directly would wait for peers that never come.

Why not submitit's TorchDistributedEnvironment: it takes the job's node list and SLURM_NTASKS
rather than the step's, and assumes every node runs the same number of tasks ("2(x3),1" does not),
and submitit is only in the `slurm` extra, while a hand-written sbatch script needs none of it.
"""

import re
from collections.abc import Mapping

from ner.errors import UserError

DEFAULT_PORT_BASE = 20000
PORT_SPREAD = 10000


def _split_top_level(text: str) -> list[str]:
    """Split on the commas that are not inside brackets: "a[1,2],b" -> ["a[1,2]", "b"]."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unmatched ']' at position {i}")
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError("unmatched '['")
    parts.append(text[start:])
    return parts


def _expand_ranges(ranges: str) -> list[str]:
    """ "01-03,7" -> ["01", "02", "03", "7"]: the width of a range's first number is kept."""
    values = []
    for part in ranges.split(","):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"bad range {part!r} in [{ranges}]")
        if not sep:
            values.append(lo)
            continue
        if int(hi) < int(lo):
            raise ValueError(f"range {part!r} in [{ranges}] runs backwards")
        values += [str(n).zfill(len(lo)) for n in range(int(lo), int(hi) + 1)]
    return values


def _expand_item(item: str) -> list[str]:
    """One host pattern, possibly with several bracket groups: "r[1-2]n[1-2]" -> 4 hosts."""
    match = re.search(r"\[([^\[\]]*)\]", item)
    if match is None:
        if "[" in item or "]" in item:
            raise ValueError(f"bad brackets in {item!r}")
        return [item]
    prefix, rest = item[: match.start()], item[match.end() :]
    tails = _expand_item(rest)
    return [prefix + value + tail for value in _expand_ranges(match.group(1)) for tail in tails]


def expand_hostlist(hostlist: str) -> list[str]:
    """Expand Slurm's compressed host list: "node[01-03,07],gpu5" -> node01 node02 node03 node07 gpu5.

    Raises ValueError on a malformed list.
    """
    hosts = []
    for item in _split_top_level(hostlist.strip()):
        if not item:
            raise ValueError(f"empty host name in {hostlist!r}")
        hosts += _expand_item(item)
    return hosts


def expand_tasks_per_node(spec: str) -> list[int]:
    """Expand Slurm's tasks-per-node list: "2(x3),1" -> [2, 2, 2, 1]; "4" -> [4].

    Raises ValueError on a malformed list.
    """
    counts = []
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if match is None:
            raise ValueError(f"bad entry {part!r}")
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def _first(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of `names` that is set (non-empty), with its value."""
    for name in names:
        if environ.get(name):
            return name, environ[name]
    return None


def _required(environ: Mapping[str, str], *names: str) -> tuple[str, str]:
    """The first of `names` that is set, with its value; a UserError when none is."""
    found = _first(environ, *names)
    if found is None:
        raise UserError(f"running under Slurm (SLURM_PROCID is set) but none of {names} is set")
    return found


def _int(environ: Mapping[str, str], *names: str) -> int:
    name, value = _required(environ, *names)
    if not value.strip().isdigit():
        raise UserError(f"environment variable {name}={value!r} is not a non-negative integer")
    return int(value)


def _local_world_size(environ: Mapping[str, str], node_rank: int) -> int:
    names = ("SLURM_NTASKS_PER_NODE", "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE")
    name, value = _required(environ, *names)
    try:
        counts = expand_tasks_per_node(value)
    except ValueError as e:
        raise UserError(f"environment variable {name}={value!r}: {e}") from e
    if len(counts) == 1:  # "--ntasks-per-node=4": the same on every node
        return counts[0]
    if node_rank >= len(counts):
        raise UserError(
            f"environment variable {name}={value!r} lists {len(counts)} nodes, "
            f"but SLURM_NODEID={node_rank}"
        )
    return counts[node_rank]


def _master_addr(environ: Mapping[str, str]) -> str:
    if environ.get("MASTER_ADDR"):
        return environ["MASTER_ADDR"]
    name, value = _required(environ, "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST")
    try:
        return expand_hostlist(value)[0]
    except ValueError as e:
        raise UserError(f"environment variable {name}={value!r} is not a host list: {e}") from e


def _master_port(environ: Mapping[str, str]) -> str:
    found = _first(environ, "MASTER_PORT", "NER_MASTER_PORT")
    if found is not None:
        name, value = found
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise UserError(f"environment variable {name}={value!r} is not a port (1-65535)")
        return value
    job_id = _int(environ, "SLURM_JOB_ID", "SLURM_JOBID")
    return str(DEFAULT_PORT_BASE + job_id % PORT_SPREAD)


def job_step(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(job, step) of the Slurm job step this process runs in, which a requeue keeps (an array
    task's job is <array job id>_<task id>); None outside a step (srun)."""
    if not (environ.get("SLURM_JOB_ID") and environ.get("SLURM_STEP_ID")):
        return None
    job = environ["SLURM_JOB_ID"]
    if environ.get("SLURM_ARRAY_TASK_ID"):
        job = f"{environ.get('SLURM_ARRAY_JOB_ID', job)}_{environ['SLURM_ARRAY_TASK_ID']}"
    return job, environ["SLURM_STEP_ID"]


def torch_env_from_slurm(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The torch.distributed variables of this Slurm task, or None when there is nothing to derive.

    None when not under Slurm (no SLURM_PROCID) or when RANK is already set (torchrun inside a
    Slurm job sets its own). Raises UserError naming the variable when one is missing or malformed.
    Typical use: `os.environ.update(torch_env_from_slurm(os.environ) or {})` before reading RANK.
    """
    if "SLURM_PROCID" not in environ or "RANK" in environ:
        return None
    rank = _int(environ, "SLURM_PROCID")
    world_size = _int(environ, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS")
    local_rank = _int(environ, "SLURM_LOCALID")
    node_rank = _int(environ, "SLURM_NODEID")
    local_world_size = _local_world_size(environ, node_rank)
    if not rank < world_size:
        raise UserError(f"SLURM_PROCID={rank} is not below the number of tasks {world_size}")
    if not local_rank < local_world_size:
        raise UserError(
            f"SLURM_LOCALID={local_rank} is not below the tasks on this node {local_world_size}"
        )
    return {
        "RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(local_rank),
        "LOCAL_WORLD_SIZE": str(local_world_size),
        "NODE_RANK": str(node_rank),
        "MASTER_ADDR": _master_addr(environ),
        "MASTER_PORT": _master_port(environ),
    }

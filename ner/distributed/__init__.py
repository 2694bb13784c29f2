"""Rank, world and device from the environment; process-group setup and the few collectives.

torchrun (or `torch.distributed.run`) sets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE and
MASTER_ADDR/PORT. Under Slurm without torchrun, the same are derived from SLURM_* (ner/distributed/slurm.py).
With none of them the program is a plain single process and every collective is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Env:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 of the whole job: the only process that writes files or prints."""
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        """Rank 0 of this node: writes node-local caches."""
        return self.local_rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_from_environ(environ=os.environ) -> dict[str, int]:
    """RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE as ints (1 process when unset)."""
    if "RANK" not in environ and "SLURM_PROCID" in environ:
        from ner.distributed.slurm import torch_env_from_slurm

        slurm = torch_env_from_slurm(environ)
        if slurm is not None:
            os.environ.update(slurm)  # init_process_group reads MASTER_ADDR/PORT from here
            environ = {**environ, **slurm}
    world = int(environ.get("WORLD_SIZE", 1))
    return {
        "rank": int(environ.get("RANK", 0)),
        "local_rank": int(environ.get("LOCAL_RANK", 0)),
        "world_size": world,
        "local_world_size": int(environ.get("LOCAL_WORLD_SIZE", world)),
    }


def require_cuda(kind: str) -> None:
    """Refuse trainer.device=cuda on a machine without CUDA, in one line: the config check
    (ner/run/checks.py, before any work) and `pick_device` both ask here."""
    if kind == "cuda" and not torch.cuda.is_available():
        from ner.errors import UserError

        raise UserError(
            "config: trainer.device=cuda but this machine has no CUDA device; use "
            "trainer.device=auto or cpu"
        )


def pick_device(kind: str, local_rank: int) -> torch.device:
    """`auto`: cuda:LOCAL_RANK when CUDA is available, else cpu."""
    require_cuda(kind)
    if kind == "cuda" or (kind == "auto" and torch.cuda.is_available()):
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


_cpu_group = None  # a gloo group for small host-side agreements when the default group is nccl


def setup(device_kind: str = "auto") -> Env:
    """Join the process group when launched with several processes (nccl on GPU, gloo on CPU)."""
    global _cpu_group
    ranks = env_from_environ()
    device = pick_device(device_kind, ranks["local_rank"])
    if ranks["world_size"] > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = timedelta(minutes=30)
        dist.init_process_group(
            backend,
            store=_attempt_store(ranks, timeout),
            rank=ranks["rank"],
            world_size=ranks["world_size"],
            timeout=timeout,
            device_id=device if device.type == "cuda" else None,
        )
        _cpu_group = dist.new_group(backend="gloo") if backend == "nccl" else None
    return Env(device=device, **ranks)


def _attempt_store(ranks: dict[str, int], timeout: timedelta) -> dist.Store:
    """The rendezvous store, with keys private to this attempt of the job.

    After a worker dies, torchrun (--max-restarts) restarts the group against the *same* agent
    store; the default env:// rendezvous then reads the dead workers' addresses left from the
    previous attempt and gloo hangs connecting to them. A prefix per restart keeps the attempts
    apart. Without a torchrun agent (Slurm), rank 0 hosts the store.
    """
    agent_hosts = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        ranks["world_size"],
        is_master=not agent_hosts and ranks["rank"] == 0,
        timeout=timeout,
        multi_tenant=True,
    )
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"ner/attempt_{attempt}", store)


def teardown() -> None:
    global _cpu_group
    if dist.is_initialized():
        dist.destroy_process_group()
    _cpu_group = None


def barrier(env: Env) -> None:
    if env.distributed:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, env: Env) -> torch.Tensor:
    """Sum over ranks, in place; returns the tensor for chaining."""
    if env.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor, env: Env) -> torch.Tensor:
    if env.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def all_reduce_max_int_async(value: int, env: Env) -> Callable[[], int]:
    """Start agreeing on the largest `value` over ranks, on the CPU (no device synchronisation);
    the returned function waits for the answer."""
    if not env.distributed:
        return lambda: value
    t = torch.tensor([value], dtype=torch.int64)
    work = dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_cpu_group, async_op=True)

    def answer() -> int:
        work.wait()
        return int(t)

    return answer


def all_gather_objects(obj, env: Env) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if not env.distributed:
        return [obj]
    out = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, env: Env):
    """Rank 0's `obj` on every rank."""
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def print0(env: Env, *args, **kwargs) -> None:
    if env.is_main:
        print(*args, **kwargs, flush=True)

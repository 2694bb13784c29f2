"""Sharded checkpoints: under FSDP every rank writes its shard of the model and optimizer state
with torch.distributed.checkpoint (DCP); rank 0 writes the rest into last.pt (ner/checkpoint.py).

In <run dir>/checkpoints of an FSDP run:

    shards-<step>-<tag>/  a DCP directory: one `__<rank>_0.distcp` per rank that wrote it, and
                          `.metadata` (every tensor's global shape and where its pieces lie)
    last.pt               as under DDP, but for the model and optimizer: its "shards" names the
                          directory that holds them (the format, progress, history, schedule,
                          scaler, every rank's RNG streams, config, labels, data fingerprints)
    step-<N>.pt           a second name of last.pt (a hard link): it names the same directory
    best.pt               the full weights, gathered on rank 0 (ner/sharding.py): every reader
                          of best.pt (the test, ner-evaluate, the export) reads it as under DDP

One checkpoint, published atomically: the ranks write into `.shards-<step>.tmpXXXXXXXX` (a name
ner/atomic.py remove_orphans clears after a kill); when DCP is done (rank 0 writes .metadata once
every rank's shard is written and fsynced) rank 0 renames it to `shards-<step>-XXXXXXXX`, a name
never used before, and then replaces last.pt atomically: that rename is the commit. A process
killed before it leaves the previous last.pt, which names its own directory, untouched; a
directory that no checkpoint names (killed between the two renames, or whose step-N.pt was
pruned) is removed by `collect`, after every save and by ner/checkpoint.py retain. Every rank
writes into the run directory, so on several nodes it must be on a file system they share
(`write` refuses in one line a checkpoint whose ranks' shards are not all there).

best.pt stays whole: it is weights only (a third of what the shards hold with AdamW), written
only when the monitored metric improves, the export gathers the same weights anyway, and every
reader of it (ner-evaluate and ner-predict on one process, the card) stays as under ddp.

Resharding: the shards hold global shapes, so a checkpoint written by N ranks loads on M (DCP
reads each rank's new pieces), into an FSDP model or a plain one (a resume under trainer.strategy
=ddp, or fsdp on one process: ner/sharding.py trains it whole). A last.pt written under ddp
resumes under fsdp too: ner/sharding.py loads the whole state into the shards. N ranks resume
on M at the same global batch (ner/run/start.py); the RNG streams of N ranks cannot be those
of M, so dropout then draws other masks than the run would have (ner/checkpoint.py says so in
one line); with dropout off, the resumed run is the one never stopped, up to the rounding of
sums over another split of the batch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from ner import atomic, distributed
from ner.disk_size import dcp_bytes
from ner.errors import UserError

PREFIX = "shards-"  # shards-<global step>-<tag>: the published DCP directories
_ADVICE = (
    "resume from another checkpoint of the run (trainer.resume=<run dir>/checkpoints/step-N.pt), "
    "or start the run anew in another directory"
)


def write(train_state, directory: Path, step: int, env: distributed.Env) -> str | None:
    """Every rank: write the shards of the model and optimizer of `train_state` (a TrainState
    of ner/checkpoint.py) at `step` into a new DCP directory under `directory`; returns its name
    (rank 0: for last.pt; other ranks: None). A failure removes the unfinished directory and
    leaves every published checkpoint as it was."""
    state = _state(train_state.model, train_state.optimizer)
    tmp = None
    if env.is_main:
        needed = dcp_bytes(state, env.world_size)
        atomic.check_room(directory / PREFIX, needed, "checkpoint")
        tmp = Path(tempfile.mkdtemp(dir=directory, prefix=f".{PREFIX}{step}.tmp"))
    tmp = Path(distributed.broadcast_object(tmp, env))
    try:
        dcp.save(state, checkpoint_id=tmp, no_dist=not dist.is_initialized())
        missing = [r for r in range(env.world_size) if not any(tmp.glob(f"__{r}_*.distcp"))]
        if distributed.broadcast_object(missing if env.is_main else None, env):
            raise UserError(
                f"checkpoint {tmp}: the shards of ranks {missing} are not there (written on "
                "another file system): under trainer.strategy=fsdp every node writes into the "
                "run directory, which must be on a file system that every node shares"
            )
        if not env.is_main:
            return None
        for item in [tmp, *tmp.rglob("*")]:
            atomic.follow_umask(item, directory=item.is_dir())
        name = f"{PREFIX}{step}-{tmp.name.rsplit('.tmp', 1)[1]}"
        os.replace(tmp, directory / name)
        atomic._fsync_dir(directory)
        return name
    except BaseException:
        if env.is_main:  # DCP fails on every rank together: no rank writes there any more
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def check(ckpt: dict, path: Path) -> None:
    """Refuse in one line a checkpoint whose shard directory is missing, unreadable or torn:
    its .metadata must read back, and every shard file must hold every byte it records (a file
    read back is checked whole, before the run is accepted)."""
    shard_dir = _directory(ckpt, path)
    if not (shard_dir / ".metadata").is_file():
        raise UserError(
            f"checkpoint {path} names its shards {shard_dir}, which are missing or "
            f"incomplete (no .metadata): {_ADVICE}"
        )
    needed: dict[str, int] = {}
    for info in _metadata(shard_dir).storage_data.values():
        end = info.offset + info.length
        needed[info.relative_path] = max(needed.get(info.relative_path, 0), end)
    for name, end in sorted(needed.items()):
        file = shard_dir / name
        size = file.stat().st_size if file.is_file() else None
        if size is None or size < end:
            have = "missing" if size is None else f"{size} bytes of the {end} it records"
            raise UserError(f"checkpoint {path}: its shard {file} is torn ({have}): {_ADVICE}")


def restore(train_state, ckpt: dict, path: Path) -> None:
    """Every rank: load the shards that checkpoint `ckpt` (read from `path`) names into the
    model and optimizer of `train_state`, resharded to this run's ranks (FSDP) or whole (a plain
    model)."""
    model, optimizer = train_state.model, train_state.optimizer
    state = _state(model, optimizer)
    _load(state, _directory(ckpt, path), no_dist=not dist.is_initialized())
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"]
    )


def saved_shapes(ckpt: dict, path: Path) -> dict[str, tuple]:
    """The shape of every model tensor in the shards that checkpoint `ckpt` (read from
    `path`) names (their global shapes)."""
    meta = _metadata(_directory(ckpt, path))
    return {
        k.removeprefix("model."): tuple(m.size)
        for k, m in meta.state_dict_metadata.items()
        if k.startswith("model.") and hasattr(m, "size")
    }


def weights(ckpt: dict, path: Path) -> dict:
    """The full model state dict in the shards that checkpoint `ckpt` (read from `path`) names;
    this process reads them alone, no collective (rank 0 rewrites best.pt so: ner/checkpoint.py)."""
    shard_dir = _directory(ckpt, path)
    meta = _metadata(shard_dir)
    weights = {
        k.removeprefix("model."): torch.empty(m.size, dtype=m.properties.dtype)
        for k, m in meta.state_dict_metadata.items()
        if k.startswith("model.") and hasattr(m, "size")
    }
    state = {"model": weights}
    _load(state, shard_dir, no_dist=True)
    return state["model"]


def named(directory: Path) -> set[str] | None:
    """The shard directories the checkpoints in `directory` name; None when one cannot be read
    (then none is known to be unnamed)."""
    names = set()
    for path in directory.glob("*.pt"):
        if path.name == "best.pt":  # full weights, never sharded
            continue
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # noqa: BLE001  torn or foreign: keep every directory
            return None
        if isinstance(ckpt, dict) and ckpt.get("shards"):
            names.add(ckpt["shards"])
    return names


def collect(directory: Path) -> int:
    """Remove the shard directories that no checkpoint in `directory` names (rank 0: the owner
    of the run directory); returns the bytes freed."""
    found = [p for p in directory.glob(f"{PREFIX}*") if p.is_dir()]
    keep = named(directory) if found else None  # a DDP run has none: nothing is read
    if keep is None:
        return 0
    freed = 0
    for path in found:
        if path.name not in keep:
            freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path)
    return freed


def _state(model, optimizer) -> dict:
    """What DCP writes and reads: the model and optimizer state, keyed by parameter names."""
    model_state, optim_state = get_state_dict(model, optimizer)
    return {"model": model_state, "optimizer": optim_state}


def _load(state: dict, shard_dir: Path, no_dist: bool) -> None:
    """DCP's load of `state` (in place) from `shard_dir`; `no_dist`: by this process alone. A
    shard that cannot be read is one line (DCP raises on every rank together)."""
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
        warnings.filterwarnings("ignore", "torch.distributed is disabled", UserWarning)
        try:
            dcp.load(state, checkpoint_id=shard_dir, no_dist=no_dist)
        except CheckpointException as e:
            raise UserError(
                f"checkpoint {shard_dir}: its shards cannot be read ({_first_failure(e)}): "
                f"{_ADVICE}"
            ) from e


def _first_failure(error: CheckpointException) -> str:
    """The first rank's failure of a DCP CheckpointException, as one line."""
    failures = getattr(error, "failures", {}) or {}
    for failure in failures.values():
        cause = failure[0] if isinstance(failure, tuple) else failure  # (exception, traceback)
        return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    return str(error).splitlines()[0]


def _directory(ckpt: dict, path: Path) -> Path:
    """The shard directory that checkpoint `ckpt`, read from `path`, names: beside it."""
    return path.parent / ckpt["shards"]


def _metadata(shard_dir: Path):
    try:
        return dcp.FileSystemReader(str(shard_dir)).read_metadata()
    except Exception as e:  # junk or torn: whatever the unpickler raises, said in one line
        raise UserError(
            f"checkpoint {shard_dir}: its shards cannot be read ({type(e).__name__}: {e}): "
            f"{_ADVICE}"
        ) from e

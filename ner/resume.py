"""Where a run starts: fresh, or from a checkpoint (`trainer.resume`), never over another run.

- `auto` (default): resume from <run dir>/checkpoints/last.pt when it exists, else start fresh.
- `never`: start fresh; refused when the run directory already holds checkpoints, so an earlier
  run is never overwritten.
- a path: resume from that checkpoint file.

With `auto`, a run directory whose checkpoint was made with a different configuration is refused
(naming the keys that differ), except for keys that do not change what is computed. With an
explicit path the differences are printed as a warning: continuing under new settings is then a
choice. A checkpoint of another label set or model shape is refused either way.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from ner import checkpoint
from ner.errors import UserError

# Keys that may change between an interrupted run and its resumption.
FREE_KEYS = {
    "trainer.resume",
    "trainer.stop_after_steps",
    "trainer.progress",
    "trainer.num_workers",
    "trainer.threads",
    "trainer.eval_test",
    "trainer.device",
    "trainer.log_every",
}


@dataclass
class Resume:
    path: Path
    checkpoint: dict


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_differences(saved_yaml: str, cfg) -> list[str]:
    """Keys (outside FREE_KEYS) whose values differ between a checkpoint's config and `cfg`."""
    saved = _flatten(yaml.safe_load(saved_yaml))
    now = _flatten(OmegaConf.to_container(cfg, resolve=True))
    keys = sorted((saved.keys() | now.keys()) - FREE_KEYS)
    return [f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in keys if saved.get(k) != now.get(k)]


def resume_point(cfg, run_dir: Path, env) -> Resume | None:
    """The checkpoint to resume from, or None for a fresh start (same answer on every rank)."""
    mode = cfg.trainer.resume
    last = run_dir / "checkpoints" / "last.pt"
    if mode == "never":
        if last.exists():
            raise UserError(
                f"run dir {run_dir} already holds a checkpoint ({last}); with trainer.resume=never "
                "it would be overwritten: choose another hydra.run.dir, or trainer.resume=auto"
            )
        return None
    if mode == "auto":
        if not last.exists():
            return None
        path = last
    else:
        path = Path(mode)
    ckpt = checkpoint.load(path)
    diff = config_differences(ckpt["config"], cfg)
    if diff and mode != "auto":  # an explicit path: the user chose to continue under new settings
        if env.is_main:
            print(
                f"warning: resuming {path} with changed settings: {'; '.join(diff)}",
                file=sys.stderr,
            )
    elif diff:
        raise UserError(
            f"checkpoint {path} was made with another configuration ({'; '.join(diff[:5])}"
            f"{'; ...' if len(diff) > 5 else ''}): choose another hydra.run.dir for a new run"
        )
    return Resume(path, ckpt)


def restore(
    start: Resume, labels: list[str], model, optimizer, scheduler, scaler, env
) -> tuple[dict, list]:
    """Load states from a checkpoint into the run; return (loop progress, log history).

    RNG streams are restored exactly when the world size is unchanged."""
    ckpt = start.checkpoint
    checkpoint.check_compatible(ckpt, start.path, labels, model)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    rngs = ckpt["rng"]
    if len(rngs) == env.world_size:
        checkpoint.set_rng_state(rngs[env.rank], env.device)
    elif env.is_main:
        print(
            f"warning: checkpoint from {len(rngs)} processes resumed on {env.world_size}: "
            "batches are the same, dropout streams are not",
            file=sys.stderr,
        )
    return ckpt["progress"], ckpt["history"]

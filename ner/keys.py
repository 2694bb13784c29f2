"""A config by its dotted keys (`data.config`): the keys the schema (ner/config.py) does not
declare, a saved config read back through the schema, and the keys that changed what a run
computes between a saved config and a new one (resume, ner/run/rundir.py). Moved out of
ner/config.py, which holds the schema itself."""

from __future__ import annotations

from typing import Any

import yaml
from omegaconf import OmegaConf

from ner.config import Config, fields


def unknown_keys(cfg: Any) -> list[str]:
    """Keys of `cfg` that the schema does not declare (`+key=value` adds keys past Hydra)."""
    known = {name for name, _ in fields()}
    return [k for k in flatten(OmegaConf.to_container(cfg)) if k not in known]


def flatten(d: dict, prefix: str = "") -> dict:
    """Dotted key -> value, down to the schema's keys: a mapping that a key holds as its value
    (data.extra_eval_files) is one value, compared whole."""
    declared = {name for name, _ in fields()}
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and f"{prefix}{k}" not in declared:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def saved_config(saved: Any) -> Any:
    """A saved config (a checkpoint's resolved YAML, a run's config.yaml, or their dict) read
    through the schema, as the code of today reads it: a key the saved config lacks (it was
    written by an older version) reads as its default, recipe keys following the saved run's
    model; a key the schema no longer has is dropped. Resume compares with it, and ner-evaluate
    and ner-predict run with it."""
    if isinstance(saved, str):
        saved = yaml.safe_load(saved)
    values = flatten(OmegaConf.to_container(OmegaConf.create(saved), resolve=True))
    known = {name for name, _ in fields()}
    cfg = OmegaConf.structured(Config)
    for name, value in values.items():
        if name in known:
            OmegaConf.update(cfg, name, value, merge=False)
    return cfg


def computed_differences(saved: dict, cfg: Any, ignore: tuple[str, ...] = ()) -> list[str]:
    """ "key: old -> new" for each key that changes what a run computes, between a saved config
    (a plain dict, as a checkpoint holds it; read by `saved_config`) and `cfg`. Operational keys
    and `ignore` may differ freely."""
    keys = {name: f.metadata.get("operational", False) for name, f in fields()}
    old = flatten(OmegaConf.to_container(saved_config(saved), resolve=True, enum_to_str=True))
    new = flatten(
        OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    )  # 'fp32', not an enum
    compared = [k for k, free in keys.items() if not free and k not in ignore]
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in compared if old.get(k) != new.get(k)]

"""Every refusal of a config, as one line: bounds, and the rules across keys.

`check(cfg)` holds each key to the bounds declared beside its default (ner/config.py) and
applies the rules that span keys; `check_schedule` the one rule that needs the data. The command
line is checked before Hydra runs it in ner/run/precheck.py, and what a run reads (files, the
resume checkpoint, the hub) in ner/run/inputs.py.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from ner.config import fields, unknown_keys
from ner.data.corpus import as_list, configs
from ner.errors import UserError


def check(cfg: Any) -> None:
    """Refuse unknown keys and values that type-check but cannot work, in one line naming the key."""
    unknown = unknown_keys(cfg)
    if unknown:  # `+key=value` adds keys past Hydra's struct check; the schema still refuses them
        raise UserError(f"config: unknown key {unknown[0]} (every key is listed in ner/config.py)")
    _check_data(cfg.data)
    _check_monitor(cfg.trainer, cfg.data)  # before the bounds: monitor_mode's default reads it
    for name, f in fields():
        value = OmegaConf.select(cfg, name)
        problem = None if value is None else _out_of_bounds(value, f.metadata)
        if problem:
            null = " or null" if "None" in str(f.type) else ""
            raise UserError(f"config: {name}={value} must be {problem}{null}")
    t, o, d, m = cfg.trainer, cfg.optim, cfg.data, cfg.model
    if not (len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas)):
        raise UserError(f"config: optim.betas={list(o.betas)} must be two numbers in [0, 1)")
    if (
        o.warmup_ratio is not None
        and o.warmup_steps
        and not OmegaConf.is_interpolation(o, "warmup_steps")
    ):  # given beside the ratio, not the recipe's default
        raise UserError(
            f"config: optim.warmup_ratio={o.warmup_ratio} and optim.warmup_steps={o.warmup_steps} "
            "both set the warm-up; give one"
        )
    w = o.class_weights
    if not (w is None or w == "inverse_frequency" or _positive_numbers(w)):
        raise UserError(
            f"config: optim.class_weights={w} must be null, inverse_frequency or a list of "
            "numbers > 0, one per label"
        )
    b = t.length_buckets
    if not (
        b in (None, "auto", "window") or (_positive_numbers(b) and all(int(n) == n for n in b))
    ):
        raise UserError(
            f"config: trainer.length_buckets={b} must be auto, window, null or a list of "
            "lengths (whole numbers > 0)"
        )
    if d.name is None and d.train_file is None:
        raise UserError("config: data.name=None is null, so data.train_file must be given")
    from ner import heads

    heads.require(m.head)
    if t.strategy == "fsdp" and t.precision == "fp16":
        raise UserError(
            "config: trainer.strategy=fsdp trains in fp32 or bf16, not trainer.precision=fp16 (its "
            "loss scaling is not built for sharded gradients); use trainer.precision=bf16"
        )
    if t.device == "cuda" or t.precision == "fp16":
        import torch

        from ner.distributed import require_cuda

        require_cuda(t.device)
        on_cpu = t.device == "cpu" or not torch.cuda.is_available()  # auto: cuda when there is one
        if t.precision == "fp16" and on_cpu:
            raise UserError(
                f"config: trainer.precision=fp16 needs a CUDA device and this run is on the CPU "
                f"(trainer.device={t.device}); use trainer.precision=bf16 or fp32"
            )
    if m.max_length is not None and 2 * m.window_stride + 2 >= m.max_length:
        raise UserError(
            f"config: model.window_stride={m.window_stride} leaves no room in a window of "
            f"model.max_length={m.max_length}: need 2*stride + 2 < max_length"
        )


def _positive_numbers(value) -> bool:
    return OmegaConf.is_list(value) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in value
    )


def _check_monitor(t, d) -> None:
    if t.monitor not in monitorable(d):
        raise UserError(
            f"config: trainer.monitor={t.monitor} is not a metric the run logs; choose one of "
            f"{', '.join(monitorable(d))}"
        )
    from ner.metrics import mode_of

    if str(t.monitor_mode) != mode_of(t.monitor):
        better = "higher" if mode_of(t.monitor) == "max" else "lower"
        raise UserError(
            f"config: trainer.monitor_mode={t.monitor_mode} contradicts trainer.monitor="
            f"{t.monitor} ({better} is better); leave trainer.monitor_mode out: it follows the "
            "metric"
        )


def _out_of_bounds(value: float, meta) -> str | None:
    """The bound of a key's declaration (`key(...)`) that `value` breaks, as text."""
    if "at_least" in meta and value < meta["at_least"]:
        return f">= {meta['at_least']:g}"
    if "above" in meta and value <= meta["above"]:
        return f"> {meta['above']:g}"
    if "below" in meta and value >= meta["below"]:
        return f"< {meta['below']:g}"
    return None


def monitorable(data_cfg) -> list[str]:
    """The log keys trainer.monitor may name: the validation metrics of every epoch, and with
    several evaluation sets each set's too (the plain keys are then their mean), and the mean
    over the training languages' sets when they are some of the sets (eval_training_f1)."""
    from ner.data.corpus import eval_set_names, training_sets
    from ner.metrics import names

    sets = eval_set_names(data_cfg)
    named = [f"{s}_" for s in sets] if len(sets) > 1 else []
    if 1 < len(training_sets(data_cfg)) < len(sets):
        named.append("training_")  # the mean over the training languages' sets
    return [f"eval_{part}{name}" for part in ["", *named] for name in names()]


def _check_data(d) -> None:
    """data.config and data.train_file: a string or a list of strings; the *_file keys replace
    the splits of one configuration only."""
    for key in ("config", "train_file"):
        value = d[key]
        if value is not None and not all(isinstance(v, str) for v in as_list(value)):
            raise UserError(f"config: data.{key}={value} must be a string or a list of strings")
    if len(configs(d)) > 1 and (d.train_file or d.validation_file or d.test_file):
        raise UserError(
            f"config: data.config={list(d.config)} has several configurations; data.*_file "
            "replaces the splits of one, so give them as sources instead (data.name=null "
            "data.train_file=[...]) or leave them out"
        )
    if d.name is None and d.eval_configs:
        raise UserError(
            "config: data.eval_configs names configurations of data.name, which is null"
        )


def check_schedule(cfg: Any, total_steps: int) -> None:
    """Checks that need the data: the warm-up must fit inside training."""
    from ner.optimization import warmup_of

    o = cfg.optim
    if (warmup := warmup_of(o, total_steps)) >= total_steps:
        given = (
            f"warmup_ratio={o.warmup_ratio} ({warmup} steps)" if o.warmup_ratio is not None else ""
        )
        raise UserError(
            f"config: optim.{given or f'warmup_steps={warmup}'} is not shorter than training "
            f"({total_steps} optimizer steps)"
        )

"""Every refusal of a config, as one line: bounds, rules across keys, and the command line.

`check(cfg)` holds each key to the bounds declared beside its default (ner/config.py) and
applies the rules that span keys. `precheck(argv)` runs before Hydra, which reports a bad override over several lines from inside
`hydra.main`, with no hook to shorten them (so not left to it); this gives the same finding as one line
(`config: trainer.foo=1: Key 'foo' not in 'TrainerConfig'`) and exit status 2 (ner/run/cli.py). A
sweep (`a=1,2`, `choice(...)`, `range(...)`) is checked job by job; intervals and globs are left
to the sweeper. Then what can be known before any work: a resume checkpoint that cannot resume,
a model or dataset the offline hub cannot give.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ner.config import as_list, fields, register, unknown_keys
from ner.errors import UserError

# Hydra's own modes (help, printing the config, ...): the command line is Hydra's alone then.
HYDRA_FLAGS = frozenset(
    [
        "--help",
        "-h",
        "--hydra-help",
        "--cfg",
        "-c",
        "--info",
        "-i",
        "--config-name",
        "-cn",
        "--config-dir",
        "-cd",
        "--config-path",
        "-cp",
        "--shell-completion",
        "-sc",
        "--package",
        "-p",
    ]
)


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
    if d.name is None and d.train_file is None:
        raise UserError("config: data.name=None is null, so data.train_file must be given")
    from ner.heads import HEADS

    if m.head not in HEADS:
        raise UserError(f"config: model.head={m.head} is not a head; heads: {', '.join(HEADS)}")
    if t.device == "cuda" or t.precision == "fp16":
        import torch

        if t.device == "cuda" and not torch.cuda.is_available():
            raise UserError(
                "config: trainer.device=cuda but this machine has no CUDA device; use "
                "trainer.device=auto or cpu"
            )
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
    if len(as_list(d.config)) > 1 and (d.train_file or d.validation_file or d.test_file):
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


MAX_PRECHECKED_JOBS = 64  # sweep jobs composed by precheck; a larger sweep checks its first 64


def quote_override_value(value: str) -> str:
    """Quote `value` for Hydra's override grammar so that it parses back to exactly `value`."""
    # Inside quotes a backslash is literal except before a quote or at the end of the string,
    # where it must be doubled; quotes themselves are escaped.
    escaped = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value)
    return "'" + escaped.replace("'", "\\'") + "'"


def precheck(argv: list[str], conf_dir: str) -> str | None:
    """Compose the config(s) of a command line before Hydra runs it; an error line or None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    args = [a for a in argv if not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except HydraException as e:
        return f"config: {str(e).splitlines()[0]}"
    for o in parsed:
        if o.key_or_group in ("hydra.run.dir", "hydra.sweep.dir") and not o.is_sweep_override():
            why = cannot_make_dir(str(o.value()))
            if why:
                return f"config: {o.input_line}: cannot be the run directory ({why})"
    own = [o for o in parsed if not (o.key_or_group or "").startswith("hydra")]
    plain = [o.input_line for o in own if not o.is_sweep_override()]
    sweeps = []
    for o in own:
        if o.is_sweep_override():
            try:
                values = list(o.sweep_string_iterator()) if o.is_discrete_sweep() else []
            except HydraException:  # a glob needs the config loader: the sweeper expands it
                values = []
            key = o.input_line.split("=", 1)[0]
            if values:
                sweeps.append([f"{key}={quote_override_value(v)}" for v in values])
    jobs = itertools.islice(itertools.product(*sweeps), MAX_PRECHECKED_JOBS)
    for job in jobs:
        problem = _precheck_one([*plain, *job], conf_dir)
        if problem:
            return problem + (f" (in the sweep job {' '.join(job)})" if job else "")
    return None


def _precheck_one(overrides: list[str], conf_dir: str) -> str | None:
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register()  # conf/config.yaml extends the schema, whoever calls the precheck
    try:
        with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        check(cfg)
        check_sources(cfg)
    except UserError as e:
        return str(e)
    except (HydraException, OmegaConfBaseException) as e:
        cause = e
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:  # raised by a resolver (ner_package_model), wrapped by OmegaConf
            return str(cause)
        text = str(e.__cause__ if e.__cause__ is not None else e).strip()
        key = next(
            (ln.split(":", 1)[1].strip() for ln in text.splitlines() if "full_key:" in ln), None
        )
        where = next((o for o in overrides if o.lstrip("+~").split("=")[0] == key), None)
        where = where or next((o for o in overrides if f"'{o.split('=')[0]}'" in str(e)), None)
        first = text.splitlines()[0]
        return f"config: {where}: {first}" if where else f"config: {first}"
    return None


def _looks_local(name: str) -> bool:
    """A value that can only be a local path (a hub name never starts with /, . or ~)."""
    return name.startswith(("/", ".", "~"))


def _check_paths(cfg: Any) -> None:
    """Every file a key names exists; a model or dataset given as a local path is a directory."""
    d = cfg.data
    files = [(f"data.train_file={f}", f) for f in as_list(d.train_file)]
    files += [(f"data.{k}={d[k]}", d[k]) for k in ("validation_file", "test_file") if d[k]]
    files += [
        (f"data.extra_eval_files.{name}={path}", path)
        for name, path in (d.extra_eval_files or {}).items()
    ]
    for where, path in files:
        if not Path(path).expanduser().is_file():
            raise UserError(f"config: {where}: no such file")
    for where, name in (("model.name_or_path", cfg.model.name_or_path), ("data.name", d.name)):
        if name and _looks_local(name) and not Path(name).expanduser().is_dir():
            raise UserError(f"config: {where}={name}: no such directory")


def check_sources(cfg: Any) -> None:
    """What is known before any work: a file or local directory named by any key that is not
    there, a feature cache that cannot be created, a resume checkpoint that cannot resume a run, a
    model or dataset that no local cache holds while the hub is offline or does not answer."""
    _check_paths(cfg)
    cache = cfg.data.cache_dir
    why = cannot_make_dir(cache) if cache is not None else None
    if why:
        raise UserError(
            f"config: data.cache_dir={cache}: cannot be created ({why}); choose another "
            "directory, or data.cache_dir=null (no cache)"
        )
    resume = cfg.trainer.resume
    if resume not in ("auto", "never"):
        from ner.checkpoint import load_resumable

        load_resumable(resume)
    name, data = cfg.model.name_or_path, cfg.data.name
    hub_model = name is not None and not Path(name).expanduser().is_dir()
    hub_data = data not in (None, "demo") and not Path(data).expanduser().is_dir()
    if not (hub_model or hub_data):
        return
    offline = any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    if not offline:
        # A hub that does not answer costs a minute of the libraries' retries (printed line by
        # line) before the same error; one request tells at once.
        unreachable = hub_unreachable()
        if not unreachable:
            return
        go_offline()
    why = "the hub is offline (HF_HUB_OFFLINE)" if offline else unreachable
    if hub_model:
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json"), str):
            raise UserError(
                f"config: model.name_or_path={name}: not a local directory, not in the Hugging "
                f"Face cache, and {why}; give a local directory: model.name_or_path=DIR"
            )
    if hub_data:
        from ner.data.sources import check_reachable

        training = as_list(cfg.data.config) or [None]
        for config in dict.fromkeys(training + list(cfg.data.eval_configs or [])):
            check_reachable(data, config)
    if not offline:  # everything was in the local cache
        from ner.distributed import env_from_environ

        if env_from_environ()["rank"] == 0:
            print(f"warning: {why}: reading the local cache only, as with HF_HUB_OFFLINE=1",
                  file=sys.stderr)  # fmt: skip


def cannot_make_dir(path: str) -> str | None:
    """Why a directory cannot be made (or written) at `path`, None when it can."""
    target = Path(path).expanduser()
    existing = next(p for p in (target, *target.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        return f"{existing} is a file" if existing.exists() else f"{existing} does not exist"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def go_offline() -> None:
    """HF_HUB_OFFLINE=1 from here on in this process. The libraries read the variable when they
    are imported (transformers, and with it huggingface_hub, already is): their flag is set too."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    for module in ("huggingface_hub.constants", "datasets.config"):
        if module in sys.modules:
            sys.modules[module].HF_HUB_OFFLINE = True


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub (HF_ENDPOINT) does not answer one request, without retries; None
    when it answers (any HTTP status)."""
    import urllib.error
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=10)
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as e:
        return f"the hub {endpoint} cannot be reached ({getattr(e, 'reason', None) or e})"
    return None

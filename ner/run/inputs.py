"""What a run reads is there, known before any work: every file or local directory a key names,
a feature cache that can be created, a resume checkpoint that can resume, a model or dataset the
hub (or, offline, the local cache) can give. A hub that does not answer is found with one request,
not a minute of the libraries' retries.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ner.data.corpus import configs, train_files
from ner.errors import UserError


def _looks_local(name: str) -> bool:
    """A value that can only be a local path (a hub name never starts with /, . or ~)."""
    return name.startswith(("/", ".", "~"))


def _check_paths(cfg: Any) -> None:
    """Every file a key names exists; a model or dataset given as a local path is a directory."""
    d = cfg.data
    files = [(f"data.train_file={f}", f) for f in train_files(d)]
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
    check_hub(cfg.model.name_or_path, cfg.data)


def check_hub(model: str | None, data_cfg: Any) -> None:
    """A model (a name or directory) and the dataset of `data_cfg` (its training and evaluation
    configurations) that the hub, or offline the local cache, can give: ner-train's precheck
    and ner-evaluate's data. A hub that does not answer one request puts this process offline
    (HF_HUB_OFFLINE=1), with a warning, rather than into a minute of the libraries' retries."""
    data = data_cfg.name
    hub_model = model is not None and not Path(model).expanduser().is_dir()
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

        if not isinstance(try_to_load_from_cache(model, "config.json"), str):
            raise UserError(
                f"config: model.name_or_path={model}: not a local directory, not in the Hugging "
                f"Face cache, and {why}; give a local directory: model.name_or_path=DIR"
            )
    if hub_data:
        from ner.data.sources import check_reachable

        training = configs(data_cfg) or [None]
        for config in dict.fromkeys(training + list(data_cfg.eval_configs or [])):
            check_reachable(data, config)
    if not offline:  # everything was in the local cache
        from ner.distributed import env_from_environ

        if env_from_environ()["rank"] == 0:
            print(
                f"warning: {why}: reading the local cache only, as with HF_HUB_OFFLINE=1",
                file=sys.stderr,
            )


def cannot_make_dir(path: str) -> str | None:
    """Why a directory cannot be made (or written) at `path`, None when it can."""
    target = Path(path).expanduser()
    existing = next(p for p in (target, *target.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        return f"{existing} is a file" if existing.exists() else f"{existing} does not exist"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    try:  # what access() cannot tell: /proc refuses a new entry even to root
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".write-check.tmp"))
    except OSError as e:
        return f"no directory can be made in {existing}: {e.strerror}"
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

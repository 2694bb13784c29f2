"""The command line, checked before Hydra runs it: one line per refusal, exit status 2.

Hydra reports a bad override over several lines from inside `hydra.main`, with no hook to
shorten them (so not left to it); `precheck(argv)` gives the same finding as one line
(`config: trainer.foo=1: Key 'foo' not in 'TrainerConfig'`) for ner/run/cli.py to print. Each job
is composed and put through the config rules (ner/run/checks.py) and what a run reads
(ner/run/inputs.py). A sweep (`a=1,2`, `choice(...)`, `range(...)`) is checked job by job;
intervals and globs are left to the sweeper.
"""

from __future__ import annotations

import itertools
import re

from ner.config import register
from ner.errors import UserError
from ner.run.checks import check
from ner.run.inputs import cannot_make_dir, check_sources

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

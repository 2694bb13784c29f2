"""Shared test helpers: offline hub, composing configs, running the demo in-process or via torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never touch the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"

# A small, fast demo: a few hundred sentences, a couple of epochs.
QUICK = [
    "experiment=demo",
    "data.max_train_samples=240",
    "data.max_eval_samples=61",
    "trainer.epochs=2",
    "trainer.batch_size=8",
    "trainer.eval_batch_size=7",
    "trainer.progress=false",
    "trainer.log_every=5",
    "trainer.threads=1",
    "optim.warmup_steps=5",
]


def compose(overrides: list[str]):
    """The config `python -m ner.train OVERRIDES` would get (without the hydra node)."""
    import hydra

    import ner.run.cli  # noqa: F401  registers the schema and resolvers

    with hydra.initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra.compose("config", overrides=overrides)


def train_in_process(run_dir: Path, overrides: list[str]):
    """Run `ner.train.train` on one process; returns (best metric, log history)."""
    from ner.distributed import Env
    from ner.train import train

    run_dir.mkdir(parents=True, exist_ok=True)
    best = train(compose(overrides), Env(), run_dir)
    history = json.loads((run_dir / "log_history.json").read_text())
    return best, history


def run_cli(args: list[str], cwd: Path, timeout: int = 300, env_extra: dict | None = None):
    """Run a command (e.g. [sys.executable, '-m', 'ner.train', ...]) and return the CompletedProcess."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def torchrun_cmd(launch: list[str], args: list[str], module: str = "ner.train") -> list[str]:
    """argv of `torchrun LAUNCH -m MODULE ARGS` with this interpreter."""
    return [sys.executable, "-m", "torch.distributed.run", *launch, "-m", module, *args]


def torchrun(
    nproc: int, args: list[str], cwd: Path, extra: list[str] | None = None, timeout: int = 300
):
    launch = ["--standalone", f"--nproc_per_node={nproc}", *(extra or [])]
    return run_cli(torchrun_cmd(launch, args), cwd, timeout)


def eval_entries(history: list[dict]) -> list[dict]:
    return [e for e in history if "eval_f1" in e]


@pytest.fixture
def repo() -> Path:
    return REPO


# A finished demo run shared by the ner-evaluate and ner-predict tests (trained once per session).
CLI_RUN_EPOCHS = 2
CLI_RUN = [
    f"trainer.epochs={CLI_RUN_EPOCHS}",
    "data.max_train_samples=300",
    "data.max_eval_samples=101",  # odd, and not a multiple of the eval batch
    "trainer.progress=false",
]


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """A finished tiny demo run, with .hydra/config.yaml as Hydra writes it."""
    from omegaconf import OmegaConf

    from ner import distributed
    from ner.train import train

    run_dir = tmp_path_factory.getbasetemp() / "cli-demo-run"
    cfg = compose(CLI_RUN)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    train(cfg, distributed.Env(), run_dir)
    return run_dir


def pytest_collection_modifyitems(items: list) -> None:
    """The slow tests (whole runs, several processes) first, in their collected order: with
    `-n auto` the workers then end on the short ones, rather than one worker finishing a
    minute-long run after the other has run out of tests. Every worker sorts alike (xdist
    requires the same collection on each)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)

"""Where a run came from: the commit of the code, the framework versions, the command line.

Written into run_info.json and each attempt's launch.json (ner/run/rundir.py) and onto the card.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def git_commit() -> str | None:
    """The commit of the code that runs (with '-dirty' when the checkout has changes)."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("-dirty" if dirty else "")


def framework_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for label, pkg in [
        ("Transformers", "transformers"),
        ("Pytorch", "torch"),
        ("Datasets", "datasets"),
        ("Tokenizers", "tokenizers"),
        ("seqeval", "seqeval"),
        ("hydra-core", "hydra-core"),
    ]:
        try:
            out[label] = version(pkg)
        except PackageNotFoundError:
            out[label] = "not installed"
    return out


def launch_command() -> str:
    """How this process was started, as a person would type it (`python -m ner.train ...`)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = ["-m", spec.name] if spec is not None and spec.name else [sys.argv[0]]
    return " ".join([Path(sys.executable).name, *program, *sys.argv[1:]])

"""Hydra multirun of the real program: one process per job, and torchrun jobs through the launcher."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from conftest import QUICK, run_cli

pytestmark = pytest.mark.slow

SMALL = [*QUICK, "trainer.epochs=1", "data.max_train_samples=120", "optim.warmup_steps=0"]


def hparams_tags(events_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events_dir), size_guidance={"tensors": 0})
    acc.Reload()
    return set(acc.PluginTagToContent("hparams"))


def test_two_job_multirun_then_report(tmp_path, capsys):
    sweep = tmp_path / "S"
    out = run_cli(
        [
            sys.executable,
            "-m",
            "ner.train",
            "-m",
            *SMALL,
            "optim.lr=1e-4,3e-3",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
        300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [j.name for j in jobs] == ["0", "1"]
    for job in jobs:
        assert (job / "README.md").is_file() and (job / "log_history.json").is_file()
        assert list((job / "tensorboard").glob("events.*"))
        assert "_hparams_/session_start_info" in hparams_tags(job / "tensorboard")

    from ner.tools.report import main as report

    assert report([str(sweep), "--csv", str(tmp_path / "r.csv")]) == 0
    table = capsys.readouterr().out
    rows = [
        line
        for line in table.splitlines()
        if line.startswith("| ") and ("| 0 " in line or "| 1 " in line)
    ]
    assert len(rows) == 2
    best = {j.name: json.loads((j / "result.json").read_text())["best"] for j in jobs}
    first = max(best, key=best.get)
    assert rows[0].startswith(f"| {first} "), table  # sorted by validation F1, best first


def test_multirun_through_the_torchrun_launcher_two_processes_per_job(tmp_path):
    sweep = tmp_path / "S2"
    out = run_cli(
        [
            sys.executable,
            "-m",
            "ner.train",
            "-m",
            "hydra/launcher=torchrun",
            "hydra.launcher.nproc_per_node=2",
            *SMALL,
            "optim.lr=1e-4,3e-3",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
        400,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = sorted(p.parent for p in sweep.rglob("run_info.json"))
    assert [r.relative_to(sweep).as_posix() for r in runs] == ["0", "1"]  # one run dir per job
    for run in runs:
        assert json.loads((run / "run_info.json").read_text())["world_size"] == 2
        assert len(list((run / "tensorboard").glob("events.*"))) == 1
        assert json.loads((run / "result.json").read_text())["status"] == "finished"


def test_the_recipe_sweep_runs_offline_and_the_report_has_its_swept_keys_as_columns(
    tmp_path, capsys
):
    """conf/experiment/wikiann_he_recipe_sweep.yaml as written runs on the tiny model and the
    demo data; here on a few sentences, with optim.head_lr held at one value (a command-line
    value wins over the sweeper's): 2 schedules x 2 layer decays."""
    sweep = tmp_path / "R"
    small = ["data.max_train_samples=120", "data.max_eval_samples=61", "trainer.epochs=1"]
    small += ["trainer.progress=false", "trainer.threads=1", "optim.warmup_steps=0"]
    cmd = [sys.executable, "-m", "ner.train", "-m", "experiment=wikiann_he_recipe_sweep"]
    out = run_cli([*cmd, *small, "optim.head_lr=null", f"hydra.sweep.dir={sweep}"], tmp_path, 300)
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1", "2", "3"]
    configs = [yaml.safe_load((sweep / j / ".hydra" / "config.yaml").read_text()) for j in jobs]
    assert {(c["optim"]["schedule"], c["optim"]["layer_decay"]) for c in configs} == {
        ("linear", None),
        ("linear", 0.9),
        ("cosine", None),
        ("cosine", 0.9),
    }
    assert {c["model"]["name_or_path"] for c in configs} == {None}  # the tiny model
    from ner.tools.report import main as report

    assert report([str(sweep)]) == 0
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.startswith("| job"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert "optim.schedule" in columns and "optim.layer_decay" in columns
    assert "optim.head_lr" not in columns  # one value in every job: not a column

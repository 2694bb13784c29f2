"""Hydra multirun of the real program: one process per job, and torchrun jobs through the launcher."""

from __future__ import annotations

import csv
import json
import statistics
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


# SMALL as one sweep's jobs record their overrides: each key once, as Hydra's sweeper writes it.
SWEPT = [*dict((o.split("=")[0], o) for o in SMALL).values()]
SWEPT = [o.replace("=false", "=False") for o in SWEPT]


def finished_job(job: Path, overrides: list[str], f1: float = 0.5) -> None:
    """A finished job of an earlier launch of the sweep, as its files show it (a checkpoint
    without weights: enough for a run in its directory to be refused)."""
    from conftest import compose
    from test_rundir import fake_checkpoint

    fake_checkpoint(job / "checkpoints" / "last.pt", compose(overrides))
    (job / "attempts" / "1").mkdir(parents=True)
    (job / "attempts" / "1" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    result = {"status": "finished", "best": f1, "monitor": "eval_f1", "best_epoch": 2.0}
    (job / "result.json").write_text(json.dumps(result))
    (job / "log_history.json").write_text(json.dumps([{"epoch": 2.0, "step": 6, "eval_f1": f1}]))


def cells(line: str) -> list[str]:
    """The cells of a markdown table row ([] for any other line)."""
    return [c.strip() for c in line.strip()[1:-1].split("|")] if line.startswith("| ") else []


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_a_sweep_launched_again_into_its_directory_accounts_for_every_job(tmp_path, capsys):
    """Jobs 0 and 1 ran seeds 1 and 2; the sweep launched again with seeds 0, 1, 2 numbers them
    anew: job 0 (seed 0) and job 1 (seed 1) are refused by the directories of those numbers,
    which hold other runs, and job 2 runs seed 2 a second time. The report lists seed 0 as
    refused with its reason (seed 1's refusal: dir 0 holds it), job 2 as a repeat, the seed
    group counts seed 2 once, and --by refuses to count it twice."""
    from ner.tools.report import main as report

    sweep = tmp_path / "S"
    for k, seed in enumerate((1, 2)):
        finished_job(sweep / str(k), [*SWEPT, f"seed={seed}"], f1=0.5 + k / 10)
    before = {k: snapshot(sweep / k) for k in ("0", "1")}
    cmd = [sys.executable, "-m", "ner.train", "-m", *SWEPT, "seed=0,1,2"]
    out = run_cli([*cmd, f"hydra.sweep.dir={sweep}"], tmp_path, 300)
    assert out.returncode == 2, out.stderr[-3000:]
    assert "job 0" in out.stderr and "made with another configuration (seed: 1 -> 0)" in out.stderr
    assert {k: snapshot(sweep / k) for k in ("0", "1")} == before  # a refusal writes nothing there
    records = sorted((sweep / "refused_jobs").glob("*.json"))
    assert [json.loads(r.read_text())["job"] for r in records] == [0, 1]
    record = json.loads(records[0].read_text())
    assert "seed=0" in record["overrides"] and record["run_dir"] == str(sweep / "0")
    assert "made with another configuration (seed: 1 -> 0)" in record["reason"]
    assert json.loads((sweep / "2" / "result.json").read_text())["status"] == "finished"

    assert report([str(sweep)]) == 0
    text = capsys.readouterr().out
    assert "4 jobs: 3 finished, 0 failed, 0 running, 1 refused." in text
    rows = {c[0]: c for c in map(cells, text.split("## Problems")[0].splitlines()) if c}
    assert rows["#0"][1:3] == ["0", "refused"]  # seed 0: its own settings, from its record
    assert rows["0"][1:3] == ["1", "finished"] and rows["2"][1:3] == ["2", "finished"]
    assert report([str(sweep), "--all", "--format", "csv"]) == 0
    errors = {r["job"]: r["error"] for r in csv.DictReader(capsys.readouterr().out.splitlines())}
    assert errors["#0"] == record["reason"]
    assert errors["2"].startswith("the same settings as job 1 (a sweep launched again")
    [group] = [
        c for c in map(cells, text.split("## Seeds")[1].splitlines()) if c and c[0] == "(defaults)"
    ]
    assert group[2] == "0 1 2 2"
    assert group[3] == f"{0.55:.4f} ± {statistics.stdev([0.5, 0.6]):.4f} (2)"  # seed 2 once

    assert report(["--compare", str(sweep), "--by", "seed", "--values", "2", "1"]) == 2
    err = capsys.readouterr().err
    assert f"jobs {sweep / '1'} and {sweep / '2'} ran the same settings (seed=2)" in err
    advice = f"`ner-report --compare {sweep / '1'} {sweep / '0'}`"
    assert err.endswith(f"compare each setting once: {advice}\n")


def test_the_torchrun_launcher_records_a_refused_jobs_reason_in_the_sweep(tmp_path, capsys):
    """Job 0 is refused by the directory of its number (another run's), job 1 by its memory
    estimate in a directory the launcher made for it: neither directory gets a byte (the one
    made is removed), the sweep directory gets each reason, and ner-report shows both."""
    from ner.tools.report import main as report

    sweep = tmp_path / "T"
    finished_job(sweep / "0", [*SWEPT, "seed=1"])
    before = snapshot(sweep / "0")
    cmd = [sys.executable, "-m", "ner.train", "-m", "hydra/launcher=torchrun", *SWEPT]
    sweep_args = ["seed=0", "trainer.device_memory_gib=1000,0.0001", f"hydra.sweep.dir={sweep}"]
    out = run_cli([*cmd, *sweep_args], tmp_path, 300)
    assert out.returncode != 0, out.stderr[-3000:]
    assert snapshot(sweep / "0") == before and not (sweep / "1").exists(), out.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in sorted((sweep / "refused_jobs").glob("*.json"))]
    assert [r["job"] for r in records] == [0, 1]
    assert "made with another configuration (seed: 1 -> 0)" in records[0]["reason"]
    assert "trainer.device_memory_gib=0.0001" in records[1]["overrides"]
    assert records[1]["reason"].startswith("config: trainer.device_memory_gib=0.0001: the model's")
    assert f"job 1 ({sweep / '1'}) refused: {records[1]['reason']}" in out.stdout + out.stderr

    assert report([str(sweep)]) == 0
    text = capsys.readouterr().out
    assert "3 jobs: 1 finished, 0 failed, 0 running, 2 refused." in text

"""ner-report on fake job directories: finished, failed, running, and jobs differing only in seed."""

import csv
import json
import os
import statistics
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ner.report.run_tables import seed_groups
from ner.tools.report import build_rows, main

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def eval_entry(epoch: int, f1: float, loss: float = 1.0) -> dict:
    return {
        "epoch": float(epoch),
        "step": 10 * epoch,
        "train_loss": loss + 0.1,
        "eval_loss": loss,
        "eval_precision": f1 - 0.01,
        "eval_recall": f1 + 0.01,
        "eval_f1": f1,
        "eval_accuracy": 0.9,
        "eval_per_type": {"PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3}},
    }


def history(*f1s: float, test_f1: float | None = None) -> list[dict]:
    entries: list[dict] = []
    for epoch, f1 in enumerate(f1s, start=1):
        entries.append({"loss": 0.5, "learning_rate": 1e-5, "epoch": epoch - 0.5, "step": 5})
        entries.append(eval_entry(epoch, f1, loss=1.0 - f1))
    if test_f1 is not None:
        entries.append({"epoch": float(len(f1s)), "step": 99, "test_loss": 0.3, "test_f1": test_f1})
    return entries


def make_job(
    path: Path,
    overrides: list[str],
    log_history: list | str | None = None,
    result: dict | str | None = None,
    error: dict | None = None,
) -> Path:
    (path / ".hydra").mkdir(parents=True)
    lines = "".join(f"- {o}\n" for o in overrides)
    (path / ".hydra" / "overrides.yaml").write_text(lines or "[]\n")
    (path / "run_info.json").write_text(json.dumps({"start_time": START.isoformat()}))
    for name, content in [("log_history", log_history), ("result", result), ("error", error)]:
        if content is not None:
            text = content if isinstance(content, str) else json.dumps(content)
            (path / f"{name}.json").write_text(text)
    return path


def finished(best: float, wall_time_s: float = 100.0) -> dict:
    return {"status": "finished", "monitor": "eval_f1", "best": best, "wall_time_s": wall_time_s}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    root.mkdir()
    (root / "multirun.yaml").write_text("hydra: {}\n")
    make_job(
        root / "0",
        ["optim.lr=1e-5", "seed=1", "hydra.job.chdir=false"],
        history(0.5, 0.7, 0.6, test_f1=0.65),
        finished(0.7, wall_time_s=120.0),
    )
    make_job(root / "1", ["optim.lr=1e-5", "seed=2"], history(0.6, 0.8), finished(0.8))
    make_job(
        root / "2",
        ["optim.lr=3e-5", "seed=1"],
        history(0.3),
        error={"status": "failed", "type": "FloatingPointError", "message": "loss is NaN | step 7"},
    )
    partial = json.dumps(history(0.4, 0.5))[:-40]  # being rewritten: truncated
    running = make_job(root / "3", ["optim.lr=3e-5", "seed=2"], partial)
    stamp = (START + timedelta(seconds=30)).timestamp()
    for path in running.rglob("*"):
        os.utime(path, (stamp, stamp))
    make_job(root / "4", ["optim.lr=1e-5", "seed=3"], history(0.9))  # running, but scored
    return root


def test_rows_order_status_and_metrics(sweep: Path) -> None:
    rows = build_rows(sweep)
    assert [r["job"] for r in rows] == ["4", "1", "0", "2", "3"]
    assert [r["status"] for r in rows] == ["running", "finished", "finished", "failed", "running"]
    by_job = {r["job"]: r for r in rows}

    job0 = by_job["0"]
    assert job0["overrides"] == {"optim.lr": "1e-5", "seed": "1"}  # hydra.* left out
    assert job0["epochs"] == 3 and job0["best_epoch"] == 2.0
    assert job0["best_f1"] == 0.7 and job0["final_f1"] == 0.6
    assert job0["best_precision"] == pytest.approx(0.69)
    assert job0["final_recall"] == pytest.approx(0.61)
    assert job0["best_accuracy"] == 0.9 and job0["test_f1"] == 0.65
    assert job0["wall_time_s"] == 120.0 and job0["error"] == ""

    assert by_job["2"]["error"] == "FloatingPointError: loss is NaN | step 7"
    assert by_job["2"]["best_f1"] == 0.3 and by_job["2"]["test_f1"] is None

    job3 = by_job["3"]  # partial log history: running, no metrics, wall time from the files
    assert job3["epochs"] is None and job3["best_f1"] is None and job3["monitor_best"] is None
    assert job3["wall_time_s"] == pytest.approx(30.0, abs=1.0)


def test_seed_groups_mean_and_sample_std_over_finished_jobs(sweep: Path) -> None:
    groups = {g["group"]: g for g in seed_groups(build_rows(sweep))}
    assert set(groups) == {"optim.lr=1e-5", "optim.lr=3e-5"}
    low = groups["optim.lr=1e-5"]
    assert low["jobs"] == 3 and low["best_f1_n"] == 2  # job 4 is still running
    assert low["best_f1_mean"] == pytest.approx(0.75)
    assert low["best_f1_std"] == pytest.approx(statistics.stdev([0.7, 0.8]))
    assert low["final_f1_mean"] == pytest.approx(0.7)
    assert low["final_f1_std"] == pytest.approx(statistics.stdev([0.6, 0.8]))
    high = groups["optim.lr=3e-5"]
    assert high["best_f1_n"] == 0 and high["best_f1_mean"] is None


def test_no_seed_section_without_seed_only_differences(tmp_path: Path) -> None:
    make_job(tmp_path / "0", ["optim.lr=1e-5", "seed=1"], history(0.5), finished(0.5))
    make_job(tmp_path / "1", ["optim.lr=3e-5", "seed=2"], history(0.6), finished(0.6))
    assert seed_groups(build_rows(tmp_path)) == []


def test_runs_dir_is_searched_recursively_and_result_without_history(tmp_path: Path) -> None:
    runs = tmp_path / "outputs"
    make_job(runs / "2024-05-01" / "12-00-00", [], history(0.5), finished(0.5))
    result = finished(0.8) | {"best_epoch": 3.0, "final": {"eval_f1": 0.75}, "test": {"f1": 0.7}}
    make_job(runs / "2024-05-02" / "09-30-00", ["+data.max_train=100"], result=result)
    (runs / "2024-05-02" / "09-30-00" / "checkpoints" / ".hydra").mkdir(parents=True)
    rows = build_rows(runs)
    assert [r["job"] for r in rows] == ["2024-05-02/09-30-00", "2024-05-01/12-00-00"]
    assert rows[0]["overrides"] == {"data.max_train": "100"}
    assert rows[0]["monitor_best"] == 0.8 and rows[0]["best_epoch"] == 3.0
    assert rows[0]["final_f1"] == 0.75 and rows[0]["test_f1"] == 0.7 and rows[0]["epochs"] is None


def test_job_that_failed_before_hydra_started(tmp_path: Path) -> None:
    job = tmp_path / "sweep" / "0"  # the launcher's record: no .hydra/, overrides in error.json
    job.mkdir(parents=True)
    error = {"status": "failed", "type": "ExitStatus", "message": "torchrun exited with code -9"}
    (job / "error.json").write_text(
        json.dumps(error | {"overrides": ["seed=1", "hydra.verbose=1"]})
    )
    (row,) = build_rows(tmp_path)
    assert (row["job"], row["status"]) == ("sweep/0", "failed")
    assert row["overrides"] == {"seed": "1"} and "code -9" in row["error"]
    assert row["epochs"] is None and row["wall_time_s"] is None


def test_a_truncated_result_is_broken_and_named(tmp_path: Path) -> None:
    # Files are replaced atomically: a result.json that is not complete JSON is not in progress.
    make_job(tmp_path, ["seed=1"], history(0.5), result='{"status": "finis')
    (row,) = build_rows(tmp_path)
    assert row["job"] == "." and row["status"] == "broken" and row["best_f1"] == 0.5
    assert row["error"] == f"broken result.json: {tmp_path / 'result.json'} is not complete JSON"


def test_loss_monitor_is_lower_is_better(tmp_path: Path) -> None:
    make_job(tmp_path / "a", ["seed=1"], history(0.5, 0.8, 0.7))
    make_job(tmp_path / "b", ["seed=2"], history(0.6))
    rows = build_rows(tmp_path, monitor="eval_loss")
    assert [r["job"] for r in rows] == ["a", "b"]
    assert rows[0]["best_epoch"] == 2.0 and rows[0]["monitor_best"] == pytest.approx(0.2)


def test_cli_writes_markdown_and_csv(sweep: Path, tmp_path: Path, capsys) -> None:
    csv_path, md_path = tmp_path / "report.csv", tmp_path / "report.md"
    assert main([str(sweep), "--csv", str(csv_path), "--markdown", str(md_path)]) == 0
    stdout = capsys.readouterr().out
    assert stdout == md_path.read_text()
    assert "5 jobs: 2 finished, 1 failed, 2 running" in stdout
    assert "loss is NaN \\| step 7" in stdout  # a | in a cell does not split the row
    assert "## Seeds" in stdout and "0h02m00s" in stdout
    with csv_path.open() as f:
        table = list(csv.DictReader(f))
    assert [r["job"] for r in table] == ["4", "1", "0", "2", "3"]
    assert table[2]["optim.lr"] == "1e-5" and table[2]["seed"] == "1"
    assert table[2]["best_f1"] == "0.7" and table[4]["best_f1"] == ""
    assert "hydra.job.chdir" not in table[0]


def test_cli_reports_user_errors(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "no job directories" in capsys.readouterr().err


def test_a_monitor_that_names_no_metric_is_one_line(sweep: Path, capsys) -> None:
    assert main([str(sweep), "--monitor", "eval_bogus"]) == 2
    assert capsys.readouterr().err == (
        "error: eval_bogus names no metric: its name must end in _ and one of loss, "
        "precision, recall, f1, accuracy\n"
    )


def test_interrupted_killed_and_extended_jobs(tmp_path: Path) -> None:
    from ner.run.lock import LOCK_NAME

    interrupted = tmp_path / "0"
    make_job(interrupted, ["seed=1"], history(0.5))
    error = {"status": "interrupted", "signal": "SIGTERM", "message": "interrupted by SIGTERM"}
    (interrupted / "error.json").write_text(json.dumps(error))
    killed = tmp_path / "1"
    make_job(killed, ["seed=2"], history(0.5))
    dead = {
        "job": "x",
        "host": "elsewhere",
        "pid": 1,
        "pid_start": None,
        "started": "",
        "command": "",
        "token": "t",
    }
    (killed / LOCK_NAME).write_text(json.dumps(dead))
    old = time.time() - 3600
    os.utime(killed / LOCK_NAME, (old, old))
    extended = tmp_path / "2"
    make_job(extended, ["seed=3", "trainer.epochs=2"], history(0.5), finished(0.5))
    (extended / "attempts" / "2").mkdir(parents=True)
    (extended / "attempts" / "2" / "overrides.yaml").write_text("- seed=3\n- trainer.epochs=4\n")
    rows = {r["job"]: r for r in build_rows(tmp_path)}
    assert rows["0"]["status"] == "interrupted" and "SIGTERM" in rows["0"]["error"]
    assert rows["1"]["status"] == "killed"
    assert rows["2"]["overrides"] == {"seed": "3", "trainer.epochs": "4"}


def test_the_default_table_fits_a_screen_and_all_shows_everything(sweep: Path, capsys) -> None:
    assert main([str(sweep)]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| job"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells == [
        "job",
        "optim.lr",
        "seed",
        "status",
        "epochs",
        "best_f1",
        "final_f1",
        "test_f1",
        "wall_time",
    ]
    assert main([str(sweep), "--all"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| job"))
    assert {"best_epoch", "best_precision", "final_accuracy", "error"} <= {
        c.strip() for c in header.strip("|").split("|")
    }


def test_latex_and_csv_formats(sweep: Path, capsys) -> None:
    assert main([str(sweep), "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert latex.startswith("\\begin{tabular}") and "\\toprule" in latex
    assert "\\midrule" in latex and "\\bottomrule" in latex
    assert "job & optim.lr & seed & status & epochs & best\\_f1" in latex
    assert "$\\pm$" in latex  # the seed groups' mean ± std
    assert main([str(sweep), "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [r["job"] for r in rows] == ["4", "1", "0", "2", "3"] and rows[2]["best_f1"] == "0.7"


def test_an_override_every_job_shares_is_not_a_column_unless_all(tmp_path: Path, capsys) -> None:
    for k, lr in enumerate(("1e-5", "3e-5")):
        make_job(tmp_path / str(k), ["experiment=demo", f"optim.lr={lr}"], history(0.5 + k / 10))
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| optim.lr" in out and "experiment" not in out
    assert main([str(tmp_path), "--all"]) == 0
    assert "| experiment" in capsys.readouterr().out


def test_the_time_between_attempts_is_not_wall_time(tmp_path: Path) -> None:
    """A run that finished in 100 s, extended a day later and interrupted after 50 s: its wall
    time is 150 s, not the day between its attempts."""
    job = make_job(tmp_path / "run", ["seed=1"], history(0.5, 0.6))
    day = timedelta(days=1)
    attempts = [
        (START, START + timedelta(seconds=100), finished(0.6)),
        (START + day, START + day + timedelta(seconds=50), {"status": "interrupted"}),
    ]
    for k, (start, end, record) in enumerate(attempts, start=1):
        (job / "attempts" / str(k)).mkdir(parents=True)
        launch = {"attempt": k, "start_time": start.astimezone().replace(tzinfo=None).isoformat()}
        (job / "attempts" / str(k) / "launch.json").write_text(json.dumps(launch))
        end_time = end.astimezone().replace(tzinfo=None).isoformat()
        (job / "attempts" / str(k) / "end.json").write_text(
            json.dumps(record | {"end_time": end_time})
        )
    error = {"status": "interrupted", "message": "interrupted by SIGTERM"}
    (job / "error.json").write_text(json.dumps(error))
    (row,) = build_rows(tmp_path)
    assert row["status"] == "interrupted" and row["wall_time_s"] == pytest.approx(150.0)
    # The attempt running now (no end yet) counts to the newest file it wrote.
    (job / "attempts" / "2" / "end.json").unlink()
    (job / "error.json").unlink()
    stamp = (START + day + timedelta(seconds=70)).timestamp()
    os.utime(job / "log_history.json", (stamp, stamp))
    for path in job.rglob("*"):
        if path.stat().st_mtime > stamp:
            os.utime(path, (stamp - 3600 * 12, stamp - 3600 * 12))  # written before it began
    (row,) = build_rows(tmp_path)
    assert row["status"] == "running" and row["wall_time_s"] == pytest.approx(170.0)

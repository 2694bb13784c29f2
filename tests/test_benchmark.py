"""experiments/benchmark: the table's pieces (fast), and bench.py / gpu.py end to end on tiny sizes."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "experiments" / "benchmark"


def load(name: str):
    """Import a script of experiments/benchmark under a unique module name."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(train, evl, mem, f1, acc=0.9) -> dict:
    return {"train": train, "eval": evl, "memory": mem, "f1": f1, "accuracy": acc}


def test_table_has_every_column_and_system():
    bench = load("bench")
    summary = {"ours": row(300, 900, 500, 0.5), "trainer": row(100, 200, 600, 0.495)}
    lines = bench.table(summary).splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == list(bench.COLUMNS)
    assert lines[2].startswith("| ours | 300.0 | 900.0 | 500 | 0.5000 | 0.9000 |")
    assert lines[3].startswith("| trainer | 100.0 | 200.0 | 600 |")


def test_ratios_check_each_target():
    bench = load("bench")
    summary = {
        "ours": row(150, 600, 500, 0.50),
        "trainer": row(100, 200, 600, 0.495),  # train 1.5x, eval 3x, memory lower, dF1 0.005
        "trainer_gbl": row(130, 250, 400, 0.52),  # train 1.15x, eval 2.4x, memory higher, dF1 0.02
    }
    default, gbl = bench.ratios(summary)
    assert "train 1.50x" in default and "eval 3.00x" in default
    assert "NOT met" not in default
    assert "train >= 1.2x: NOT met" in gbl
    assert "eval >= 3x: NOT met" in gbl
    assert "memory <= 1x: NOT met" in gbl
    assert "|dF1| <= 0.01: NOT met" in gbl


def test_median_over_repeats():
    bench = load("bench")
    runs = {"ours": [row(1, 10, 100, 0.1), row(3, 30, 300, 0.3), row(2, 20, 200, 0.2)]}
    assert bench.summarise(runs)["ours"] == row(2, 20, 200, 0.2, 0.9)


def test_synthetic_batches_look_like_wikiann():
    gpu = load("synthetic")  # strategies.py's batches, which were gpu.py's
    batches = gpu.make_batches(20, 16, 25.0, 8.6, 1000, True, seed=0)
    lengths = [n for b in batches for n in b["lengths"]]
    assert len(lengths) == 20 * 16
    assert 23 < sum(lengths) / len(lengths) < 28
    labelled = sum(int((b["labels"] != gpu.IGNORE).sum()) for b in batches) / len(lengths)
    assert 7 < labelled < 10.5  # ~8.6 words per sentence
    for b in batches:
        assert b["input_ids"].shape[1] % 8 == 0
        for r, n in enumerate(b["lengths"]):
            assert int(b["attention_mask"][r].sum()) == n
            assert b["labels"][r, 0] == gpu.IGNORE and (b["labels"][r, n - 1 :] == gpu.IGNORE).all()


def test_gpu_summary_gives_ratios_goals_and_the_card():
    gpu = load("gpu")

    def run(batch, precision, system, train, step_ms, evl):
        fields = {"batch": batch, "precision": precision, "system": system, "train": train}
        return {**fields, "step_ms": step_ms, "eval": evl, "memory": 2.5}

    runs = [
        run(3, "fp32", "ours", 330, 9.0, 1000),
        run(3, "fp32", "trainer", 110, 27.0, 440),
        run(3, "bf16", "ours", 300, 10.0, 900),
        run(3, "bf16", "trainer", 54, 55.0, 300),
        run(32, "bf16", "ours", 1500, 21.0, 5000),
        run(32, "bf16", "trainer", 500, 64.0, 2500),
    ]
    lines = gpu.summary_lines(runs, "cuda")
    assert lines[0].startswith("| batch | precision | system | train sentences/s | ms per step |")
    assert lines[2] == "| 3 | fp32 | ours | 330.0 | 9.0 | 9.0 | 1000.0 | 1000.0 | 2.50 |"
    text = "\n".join(lines)
    assert "batch 3 fp32, ours/Trainer: train 3.00x (>= 3x: met), eval 2.27x (>= 2x: met)" in text
    assert "batch 32 bf16, ours/Trainer: train 3.00x (>= 3x: met), eval 2.00x (>= 2x: met)" in text
    assert "batch 3 bf16/fp32, ours: train 0.91x, eval 0.90x (>= 1x: NOT met)" in text
    # 666,700 steps x 9 ms = 1.667 h, 100 x 10,000 sentences at 1000/s = 0.278 h
    assert "ours fp32: training 1.67 h + evaluation 0.28 h = 1.94 h (<= 1 h: NOT met)" in text
    # After warm-up figures, where a run has them, are the ones compared and projected.
    warm = {"steady_ms": 6.0, "eval_steady": 2000.0, "train_steady": 500.0}
    text = "\n".join(gpu.summary_lines([{**runs[0], **warm}, *runs[1:]], "cuda"))
    assert "| 3 | fp32 | ours | 330.0 | 9.0 | 6.0 | 1000.0 | 2000.0 | 2.50 |" in text
    assert "batch 3 fp32, ours/Trainer: train 4.55x (>= 3x: met), eval 4.55x" in text
    assert "ours fp32: training 1.11 h + evaluation 0.14 h = 1.25 h (<= 1 h: NOT met)" in text
    h = gpu.card_hours(9.0, 1000)
    assert h["total"] == pytest.approx(h["train"] + h["eval"])
    assert h["train"] == pytest.approx(666_700 * 0.009 / 3600)


def test_gpu_summary_gives_each_loop_its_goals_and_step_graphs_against_the_default():
    gpu = load("gpu")

    def run(batch, precision, system, train, evl):  # after warm-up throughout
        fields = {"batch": batch, "precision": precision, "system": system, "memory": 2.5}
        return {**fields, "train": train, "step_ms": batch * 1000 / train, "eval": evl}

    runs = [
        run(3, "fp32", "ours", 330, 1000),
        run(3, "fp32", "ours_graphs", 396, 900),
        run(3, "fp32", "trainer", 110, 440),
        run(3, "bf16", "ours", 300, 900),
        run(3, "bf16", "ours_graphs", 450, 1000),
        run(3, "bf16", "trainer", 54, 300),
        run(32, "bf16", "ours", 1500, 5000),
        run(32, "bf16", "ours_graphs", 1200, 5000),
        run(32, "bf16", "trainer", 500, 2500),
    ]
    text = "\n".join(gpu.summary_lines(runs, "cuda"))
    assert "| 3 | bf16 | ours_graphs | 450.0 | 6.7 | 6.7 | 1000.0 | 1000.0 | 2.50 |" in text
    # Each of the loop's variants against the Trainer and every goal; the Trainer against none.
    assert (
        "batch 3 fp32, ours_graphs/Trainer: train 3.60x (>= 3x: met), eval 2.05x (>= 2x: met)"
        in text
    )
    assert "batch 32 bf16, ours_graphs/Trainer: train 2.40x (>= 3x: NOT met), eval 2.00x" in text
    assert "batch 3 bf16/fp32, ours_graphs: train 1.14x, eval 1.11x (>= 1x: met)" in text
    assert "batch 3 bf16/fp32, trainer: train 0.49x, eval 0.68x\n" in text
    # 666,700 steps at 3000/450 ms = 1.235 h; 1,000,000 sentences at 1000/s = 0.278 h
    assert (
        "ours_graphs bf16: training 1.23 h + evaluation 0.28 h = 1.51 h (<= 1 h: NOT met)" in text
    )
    assert re.search(
        r"trainer fp32: training [\d.]+ h \+ evaluation [\d.]+ h = [\d.]+ h$", text, re.M
    )
    # ours_graphs/ours at each setting, then over them: the figures that pick the CUDA default.
    assert "- batch 3 fp32, ours_graphs/ours: train 1.20x, eval 0.90x" in text
    assert "- batch 3 bf16, ours_graphs/ours: train 1.50x, eval 1.11x" in text
    assert "- batch 32 bf16, ours_graphs/ours: train 0.80x, eval 1.00x" in text
    # geometric means: (1.2 x 1.5 x 0.8) ** (1/3) = 1.129, (0.9 x 1.111 x 1) ** (1/3) = 1.0
    assert text.endswith(
        "- ours_graphs/ours over 3 setting(s): training faster at 2, evaluation faster at 1; "
        "geometric mean train 1.13x, eval 1.00x"
    )
    # ours_graphs_compiled, when a lease names it, gets the same lines against ours.
    compiled = [run(3, "bf16", "ours_graphs_compiled", 600, 1200)]
    text = "\n".join(gpu.summary_lines([*runs, *compiled], "cuda"))
    assert "batch 3 bf16, ours_graphs_compiled/Trainer: train 11.11x (>= 3x: met)" in text
    assert text.endswith(
        "- batch 3 bf16, ours_graphs_compiled/ours: train 2.00x, eval 1.33x\n"
        "- ours_graphs_compiled/ours over 1 setting(s): training faster at 1, evaluation faster "
        "at 1; geometric mean train 2.00x, eval 1.33x"
    )
    # Without ours_graphs (the CPU's default systems) the summary compares nothing to it.
    plain = "\n".join(gpu.summary_lines([r for r in runs if r["system"] != "ours_graphs"], "cuda"))
    assert "ours_graphs" not in plain and "batch 3 fp32, ours/Trainer: train 3.00x" in plain


def test_gpu_systems_rotate_from_one_setting_to_the_next():
    gpu = load("gpu")
    # Each of three runs first, in the middle and last once over the three settings.
    orders = [gpu.rotated(list(gpu.CUDA_SYSTEMS), k) for k in range(3)]
    assert orders == [
        ["ours", "ours_graphs", "trainer"],
        ["ours_graphs", "trainer", "ours"],
        ["trainer", "ours", "ours_graphs"],
    ]
    assert gpu.rotated(["ours", "trainer"], 1) == ["trainer", "ours"]  # two: they alternate
    with pytest.raises(SystemExit):
        gpu.parse_args(["--systems", "ours,graphs"])


def fake_gpu_runs(monkeypatch, tmp_path, fail: str | None = None):
    """gpu.py with its runs' subprocesses replaced by a record of what bench.ours and
    bench.trainer were given, on a clock at which each run takes 100 s; `fail`: the system
    whose runs fail as a failed subprocess does. Returns the module and the record."""
    gpu = load("gpu")
    model = tmp_path / "model"
    model.mkdir()
    info = {"parameters": 1e6, "hidden": 8, "layers": 1, "vocab": 9}
    (model / "benchmark_model.json").write_text(json.dumps(info))
    calls, now = [], [0.0]

    def figures(system, run, extra):
        calls.append((system, run.batch_size, run.epochs, run.max_train_samples, extra))
        now[0] += 100
        graphs = system == "ours" and extra.get("trainer.step_graphs") == "true"
        if fail == ("ours_graphs" if graphs else system):
            raise gpu.bench.RunFailed("python -m ner.train ... failed (1); log x.log:\nboom")
        m = {"train": 10.0, "eval": 20.0, "memory": 300.0, "step_ms": 5.0, "steps": 4}
        return {**m, "f1": 0.5, "accuracy": 0.9}

    def ours(run, model, run_dir, env, extra, launcher):
        return figures("ours", run, extra)

    def trainer(run, model, run_dir, env, group_by_length, extra, launcher):
        return figures("trainer", run, extra)

    monkeypatch.setattr(gpu.bench, "ours", ours)
    monkeypatch.setattr(gpu.bench, "trainer", trainer)
    monkeypatch.setattr(gpu, "time", SimpleNamespace(monotonic=lambda: now[0]))
    argv = ["--device=cpu", "--tiny", f"--model={model}", f"--work-dir={tmp_path / 'work'}"]
    return gpu, calls, [*argv, "--results=-"]


def test_gpu_runs_ours_graphs_as_ours_with_step_graphs_and_stops_after(
    tmp_path, monkeypatch, capsys
):
    gpu, calls, argv = fake_gpu_runs(monkeypatch, tmp_path)
    report = gpu.main([*argv, "--systems=trainer,ours_graphs,ours", "--stop-after=450"])
    ran = [(c[0], c[1], c[4].get("trainer.step_graphs") if c[0] == "ours" else c[4]) for c in calls]
    # Five runs start by 450 s (the sixth would start at 500 s); ours_graphs is ours' call with
    # trainer.step_graphs=true, and both loops run two epochs of half the steps.
    assert ran == [
        ("ours", 3, None),
        ("ours", 3, "true"),
        ("trainer", 3, []),
        ("ours", 3, "true"),
        ("trainer", 3, ["--bf16"]),
    ]
    assert calls[1][4] == {**calls[0][4], "trainer.step_graphs": "true"}
    assert [c[2:4] for c in calls] == [(2, 6), (2, 6), (1, 12), (2, 6), (1, 12)]
    assert [(r["batch"], r["precision"], r["system"]) for r in report["runs"]] == [
        (3, "fp32", "ours"),
        (3, "fp32", "ours_graphs"),
        (3, "fp32", "trainer"),
        (3, "bf16", "ours_graphs"),
        (3, "bf16", "trainer"),
    ]
    assert [r["wall_s"] for r in report["runs"]] == [100] * 5
    out = capsys.readouterr().out
    assert "- batch 3 bf16 ours: not run (500 s past the start, --stop-after 450)" in out
    assert "- batch 32 bf16 trainer: not run (500 s past the start" in out
    assert "- batch 32 bf16 ours_graphs: not run (500 s past the start" in out
    assert "- batch 3 fp32, ours_graphs/ours: train 1.00x, eval 1.00x" in out
    (work,) = (tmp_path / "work").iterdir()
    assert json.loads((work / "results.json").read_text())["runs"] == report["runs"]


def test_gpu_goes_on_past_a_failed_run_and_then_fails(tmp_path, monkeypatch, capsys):
    gpu, calls, argv = fake_gpu_runs(monkeypatch, tmp_path, fail="ours_graphs")
    argv += ["--systems=ours,ours_graphs,trainer", "--settings=3:fp32,32:bf16"]
    with pytest.raises(
        SystemExit, match=r"^failed: batch 3 fp32 ours_graphs, batch 32 bf16 ours_graphs "
    ):
        gpu.main(argv)
    assert len(calls) == 6  # every run was tried
    out = capsys.readouterr().out
    assert (
        "- batch 3 fp32 ours_graphs: FAILED: python -m ner.train ... failed (1); log x.log:\nboom"
        in out
    )
    assert "- batch 32 bf16, ours/Trainer: train 1.00x (>= 3x: NOT met)" in out  # after it
    assert "- batch 32 bf16 ours_graphs: failed (gpu.py's output has its log's tail)" in out
    (work,) = (tmp_path / "work").iterdir()
    results = json.loads((work / "results.json").read_text())
    assert results["failed"] == ["batch 3 fp32 ours_graphs", "batch 32 bf16 ours_graphs"]
    assert [r["system"] for r in results["runs"]] == ["ours", "trainer"] * 2


def test_cuda_peak_runs_the_program_as_python_would(tmp_path):
    # The program's argv, sys.path[0] and exit status are python's; the peak is written at exit.
    (tmp_path / "prog.py").write_text("import sys\nprint(sys.argv, sys.path[0])\nsys.exit(3)\n")
    out = tmp_path / "peak.json"
    cmd = [sys.executable, str(BENCH_DIR / "cuda_peak.py"), str(out), "prog.py", "--x"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == f"['prog.py', '--x'] {tmp_path}"
    assert out.read_text() == '{"max_memory_allocated": 0}\n'  # no CUDA used
    out.unlink()
    cmd = [sys.executable, str(BENCH_DIR / "cuda_peak.py"), str(out), "-m", "prog", "--y"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == f"['{tmp_path / 'prog.py'}', '--y'] {tmp_path}"
    assert out.exists()


@pytest.mark.slow
@pytest.mark.bench  # six trainings, three of them the Trainer's (`pytest -m bench` runs the three alone)
def test_gpu_script_runs_the_comparison_tiny_on_cpu(tmp_path):
    pytest.importorskip("accelerate")  # the Trainer needs it: the optional `bench` extra
    gpu = load("gpu")
    results = tmp_path / "RESULTS.md"
    argv = ["--tiny", "--device", "cpu", f"--work-dir={tmp_path}", f"--results={results}"]
    report = gpu.main(argv)
    runs = report["runs"]
    settings = [(r["batch"], r["precision"], r["system"]) for r in runs]
    assert settings == [(b, p, s) for b, p in gpu.SETTINGS for s in ("ours", "trainer")]
    for r in runs:
        assert r["train"] > 0 and r["eval"] > 0 and r["step_ms"] > 0, r
        assert r["memory"] > 100, r  # a Python process with torch, MiB
        assert r["steps"] == 4, r
    (work,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    # The same data on both sides: 4 steps at the run's batch, 24 evaluation sentences.
    history = json.loads((work / "ours-b32-bf16" / "log_history.json").read_text())
    assert history[-1]["step"] == 4
    trainer = json.loads((work / "trainer-b32-bf16" / "result.json").read_text())
    assert (trainer["n_train"], trainer["n_eval"], trainer["steps"]) == (128, 24, 4)
    config = (work / "ours-b3-bf16" / "attempts" / "1" / "config.yaml").read_text()
    assert "precision: bf16" in config and "batch_size: 3" in config
    text = results.read_text()
    assert "python experiments/benchmark/gpu.py --tiny --device cpu" in text
    assert re.search(r"batch 3 fp32, ours/Trainer: train [\d.]+x", text)
    assert re.search(r"the card's 666,700 steps .* ours bf16: training [\d.]+ h", text)


@pytest.mark.slow
@pytest.mark.bench  # one training of the loop
def test_gpu_script_runs_ours_graphs_through_the_loop(tmp_path, capsys):
    # On the CPU step graphs do not serve: the run says so and trains as ours would, but the key
    # must reach the loop's config through gpu.py's command.
    gpu = load("gpu")
    argv = ["--tiny", "--device=cpu", "--systems=ours_graphs", "--settings=3:fp32"]
    report = gpu.main([*argv, f"--work-dir={tmp_path}", "--results=-"])
    (r,) = report["runs"]
    assert (r["system"], r["steps"]) == ("ours_graphs", 4) and r["train"] > 0 and r["eval"] > 0
    assert r["wall_s"] > 0
    (work,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    config = (work / "ours_graphs-b3-fp32" / "attempts" / "1" / "config.yaml").read_text()
    assert "step_graphs: true" in config and "precision: fp32" in config
    assert "- batch 3 fp32 ours_graphs: 4 steps, train " in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.bench  # three trainings, two of them the Trainer's
def test_bench_prints_table_with_every_system(tmp_path):
    pytest.importorskip("accelerate")  # the Trainer needs it: the optional `bench` extra
    bench = load("bench")
    results = tmp_path / "RESULTS.md"
    cmd = [
        sys.executable,
        str(BENCH_DIR / "bench.py"),
        "--data=demo",
        "--tiny",
        "--max-train-samples=48",
        "--max-eval-samples=24",
        "--epochs=1",
        "--batch-size=16",
        "--threads=1",
        f"--work-dir={tmp_path / 'work'}",
        f"--results={results}",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| system |"))
    assert [c.strip() for c in lines[header].strip("|").split("|")] == list(bench.COLUMNS)
    rows = {}
    for line in lines[header + 2 : header + 5]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = [float(c) for c in cells[1:]]
    assert set(rows) == {"ours", "trainer", "trainer_gbl"}
    for name, (train, evl, mem, f1, acc) in rows.items():
        assert train > 0 and evl > 0 and mem > 100, name  # a Python process with torch
        assert 0 <= f1 <= 1 and 0 < acc <= 1, name
    assert re.search(r"ours/trainer: train [\d.]+x", out.stdout)
    assert re.search(r"ours/trainer_gbl: train [\d.]+x", out.stdout)
    text = results.read_text()
    assert "python experiments/benchmark/bench.py --data=demo --tiny" in text
    assert lines[header] in text


def test_precision_summary_gives_bf16_over_fp32():
    precision = load("precision")
    runs = {
        "fp32": [row(100, 200, 500, 0.8), row(120, 220, 520, 0.8)],
        "bf16": [row(40, 100, 480, 0.79), row(60, 120, 490, 0.79)],
    }
    lines = precision.summary_lines(runs)
    assert "| fp32 | 110.0 | 210.0 | 510 | 0.8000 |" in lines
    assert "| bf16 | 50.0 | 110.0 | 485 | 0.7900 |" in lines
    assert lines[-1] == (
        "- bf16/fp32: train 0.45x, eval 0.52x, F1 -0.0100 (bf16 0.7900, fp32 0.8000)"
    )


@pytest.mark.slow
@pytest.mark.bench  # four trainings in turn
def test_precision_runs_fp32_and_bf16_alternating_and_appends_the_command(tmp_path):
    results = tmp_path / "RESULTS.md"
    overrides = ["experiment=demo", "data.max_train_samples=48", "data.max_eval_samples=24"]
    overrides += ["trainer.epochs=1", "optim.warmup_steps=0", "data.cache_dir=null"]
    cmd = [sys.executable, str(BENCH_DIR / "precision.py"), "--repeats=2"]
    cmd += [f"--work-dir={tmp_path / 'work'}", f"--results={results}", "--", *overrides]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    ran = re.findall(r"^- (fp32|bf16) repeat (\d)", out.stdout, re.M)
    assert ran == [("fp32", "1"), ("bf16", "1"), ("bf16", "2"), ("fp32", "2")]
    (work,) = (tmp_path / "work").iterdir()
    for run in ("fp32-r0", "bf16-r0"):
        config = (work / run / "attempts" / "1" / "config.yaml").read_text()
        assert f"precision: {run[:4]}" in config and "threads: 1" in config
    text = results.read_text()
    assert "python experiments/benchmark/precision.py --repeats=2" in text
    assert re.search(r"- bf16/fp32: train [\d.]+x, eval [\d.]+x, F1 [-+][\d.]+", text)


def test_strategies_table_and_ratios():
    strategies = load("strategies")

    def run(ms, steady, peak, est):
        return {
            "step_ms": ms,
            "steady_mib": steady,
            "peak_mib": peak,
            "estimate_mib": est,
            "estimate": f"line {est}",
        }

    runs = {
        "ddp": [run(100, 80, 300, 50), run(120, 100, 310, 50)],
        "fsdp": [run(150, 45, 200, 30)] * 2,
    }
    lines = strategies.summary_lines(runs, "cpu")
    assert lines[2] == "| ddp | 110.0 | 90 | 305 | 50 |"
    assert lines[3] == "| fsdp | 150.0 | 45 | 200 | 30 |"
    assert "fsdp/ddp: step time 1.36x, at start 0.50x, peak 0.66x, estimate 0.60x" in lines[5]
    assert lines[6:] == ["- line 50", "- line 30"]


def test_a_strategies_worker_steps_and_reports_its_rank(tmp_path):
    # One process, in-process (no torchrun): fsdp there trains the model whole (ner/sharding.py).
    import json

    import torch

    strategies = load("strategies")
    out = tmp_path / "rank.json"
    threads = torch.get_num_threads()
    try:
        strategies.main(
            [
                "--worker",
                "--strategy=fsdp",
                f"--out={out}",
                "--shape=tiny",
                "--steps=1",
                "--warmup=1",
                "--batch=2",
            ]
        )
    finally:
        torch.set_num_threads(threads)
    report = json.loads(out.read_text())
    assert [r["rank"] for r in report["ranks"]] == [0]
    assert report["ranks"][0]["step_ms"] > 0 and report["ranks"][0]["peak_mib"] >= 0
    assert report["estimate"].startswith("memory per rank (fsdp, 1 rank, fp32")


@pytest.mark.skipif(
    importlib.util.find_spec("torch") and __import__("torch").cuda.device_count() >= 2,
    reason="a machine with 2 GPUs runs it",
)
def test_the_gpu_comparison_needs_a_device_per_rank():
    with pytest.raises(SystemExit, match="--nproc 2 needs 2 CUDA devices"):
        load("gpu").main(["--strategies", "--nproc", "2"])

"""Our loop against the Hugging Face Trainer (`run_ner` recipe): same model, data, seed, threads.

    HF_HUB_OFFLINE=1 python experiments/benchmark/bench.py --max-train-samples 4000 \
        --max-eval-samples 2000 --epochs 2 --threads 2 --repeats 1

One run builds the model directory (build_model.py; or takes `--model DIR`), then trains and
evaluates, each in its own subprocess, (a) `python -m ner.train` with its defaults and the shared
settings as overrides, (b) trainer_run_ner.py with the Trainer's defaults, (c) the same with
`group_by_length`. Repeats alternate the order (ours, trainer, trainer_gbl, then reversed) so a
busy machine does not favour one system. Every subprocess gets the same thread count
(`OMP_NUM_THREADS` and `torch.set_num_threads`).

What is measured, per system (median over repeats):
- train sentences/s: training sentences x epochs / training seconds, evaluation excluded on both
  sides (ours: `train_samples_per_second` of the final entry of log_history.json, which times the
  optimizer steps only; Trainer: on_epoch_begin..on_epoch_end, see trainer_run_ner.py);
- eval sentences/s: validation sentences / seconds of one evaluation pass (prediction and
  metrics), the mean over the per-epoch evaluations (`eval_samples_per_second` of both logs);
- peak memory: the maximum resident set size of the subprocess (`os.wait4`'s rusage, exact per
  child; it covers the whole run, start-up and data preparation included);
- final validation F1 and accuracy (seqeval, default mode) after the last epoch.
The table, the ratios ours/Trainer and the exact command are printed and appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from build_model import build, default_data  # noqa: E402

SYSTEMS = ("ours", "trainer", "trainer_gbl")
COLUMNS = (
    "system",
    "train sentences/s",
    "eval sentences/s",
    "peak memory MiB",
    "final val F1",
    "final val accuracy",
)
TINY_SHAPE = {"hidden": 32, "layers": 1, "heads": 2, "intermediate": 64, "vocab": 500}


class RunFailed(RuntimeError):
    """A system's subprocess exited with an error; the message holds its command and log tail."""


def run_measured(cmd: list[str], env: dict, log_path: Path) -> float:
    """Run a subprocess to the end; return its peak resident memory in MiB (RunFailed if it
    failed)."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        # wait4 gives this child's own rusage (getrusage(RUSAGE_CHILDREN) is a max over all).
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(True)[-30:])
        raise RunFailed(f"{shlex.join(cmd)} failed ({proc.returncode}); log {log_path}:\n{tail}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def ours(
    a, model: Path, run_dir: Path, env: dict, extra: dict | None = None, launcher: list[str] = ()
) -> dict:
    """`python -m ner.train` with the shared settings and `extra` overrides (`launcher`: arguments
    between python and `-m`, gpu.py's cuda_peak.py); its figures, from its run directory."""
    over = {
        "model.name_or_path": model,
        "data.name": a.data,
        "data.config": a.data_config or "null",
        "data.max_train_samples": a.max_train_samples or "null",
        "data.max_eval_samples": a.max_eval_samples or "null",
        "trainer.batch_size": a.batch_size,
        "trainer.eval_batch_size": a.eval_batch_size,
        "trainer.epochs": a.epochs,
        "trainer.threads": a.threads,
        "trainer.device": a.device,
        "trainer.progress": "false",  # the Trainer side runs with disable_tqdm too
        "trainer.eval_test": "false",  # no test split is scored on the Trainer side either
        "optim.lr": a.lr,
        "optim.warmup_steps": a.warmup_steps,
        "seed": a.seed,
        "hydra.run.dir": run_dir,
        **(extra or {}),
    }
    cmd = [sys.executable, *launcher, "-m", "ner.train", *(f"{k}={v}" for k, v in over.items())]
    peak = run_measured(cmd, env, run_dir.parent / f"{run_dir.name}.log")
    history = json.loads((run_dir / "log_history.json").read_text())
    evals = [e for e in history if "eval_f1" in e]
    final = history[-1]
    return {
        "train": final["train_samples_per_second"],
        "eval": statistics.mean(e["eval_samples_per_second"] for e in evals),
        "memory": peak,
        "f1": evals[-1]["eval_f1"],
        "accuracy": evals[-1]["eval_accuracy"],
        "step_ms": 1000 * final["train_runtime"] / final["step"],
        "steps": final["step"],
        # After the warm-up: the throughput of the second half of the logged windows (a loop
        # that compiles or captures graphs does so in its first steps), and the last evaluation
        # (the first one compiles the evaluation's graphs).
        "steady_step_ms": steady_step_ms(history),
        "eval_last": evals[-1]["eval_samples_per_second"],
    }


def steady_step_ms(history: list[dict]) -> float | None:
    """ms per optimizer step over the second half of the run's train log windows (their
    steps_per_second); None when fewer than two windows were logged."""
    rates = [e["steps_per_second"] for e in history if e.get("steps_per_second")]
    later = rates[len(rates) // 2 :]
    return 1000 / statistics.mean(later) if len(rates) >= 2 else None


def trainer(
    a,
    model: Path,
    run_dir: Path,
    env: dict,
    group_by_length: bool,
    extra: list[str] = (),
    launcher: list[str] = (),
) -> dict:
    """trainer_run_ner.py with the shared settings and `extra` arguments (`launcher`: as ours)."""
    out = run_dir / "result.json"
    cmd = [
        sys.executable,
        *launcher,
        str(HERE / "trainer_run_ner.py"),
        f"--model={model}",
        f"--out={out}",
        f"--data={a.data}",
        f"--epochs={a.epochs}",
        f"--batch-size={a.batch_size}",
        f"--eval-batch-size={a.eval_batch_size}",
        f"--lr={a.lr}",
        f"--warmup-steps={a.warmup_steps}",
        f"--seed={a.seed}",
        f"--threads={a.threads}",
        f"--device={a.device}",
    ]
    cmd += [f"--data-config={a.data_config}"] if a.data_config else []
    cmd += [f"--max-train-samples={a.max_train_samples}"] if a.max_train_samples else []
    cmd += [f"--max-eval-samples={a.max_eval_samples}"] if a.max_eval_samples else []
    cmd += ["--group-by-length"] if group_by_length else []
    cmd += extra
    run_dir.mkdir(parents=True)
    peak = run_measured(cmd, env, run_dir.parent / f"{run_dir.name}.log")
    r = json.loads(out.read_text())
    return {
        "train": r["train_samples_per_second"],
        "eval": statistics.mean(e["eval_samples_per_second"] for e in r["eval"]),
        "memory": peak,
        "f1": r["eval"][-1]["eval_f1"],
        "accuracy": r["eval"][-1]["eval_accuracy"],
        "step_ms": 1000 * r["train_seconds"] / r["steps"],
        "steps": r["steps"],
    }


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    return {s: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for s, rs in runs.items()}


def table(summary: dict[str, dict]) -> str:
    rows = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for s, m in summary.items():
        rows.append(
            f"| {s} | {m['train']:.1f} | {m['eval']:.1f} | {m['memory']:.0f} | "
            f"{m['f1']:.4f} | {m['accuracy']:.4f} |"
        )
    return "\n".join(rows)


def ratios(summary: dict[str, dict]) -> list[str]:
    """ours/Trainer per Trainer variant, and which of the issue's targets hold."""
    if "ours" not in summary:
        return []
    o, lines = summary["ours"], []
    need_train = {"trainer": 1.5, "trainer_gbl": 1.2}
    for s in ("trainer", "trainer_gbl"):
        if s not in summary:
            continue
        t = summary[s]
        tr, ev, mem, df1 = (
            o["train"] / t["train"],
            o["eval"] / t["eval"],
            o["memory"] / t["memory"],
            o["f1"] - t["f1"],
        )
        checks = [
            f"train >= {need_train[s]}x: {'met' if tr >= need_train[s] else 'NOT met'}",
            f"eval >= 3x: {'met' if ev >= 3 else 'NOT met'}",
            f"memory <= 1x: {'met' if mem <= 1 else 'NOT met'}",
            f"|dF1| <= 0.01: {'met' if abs(df1) <= 0.01 else 'NOT met'}",
        ]
        lines.append(
            f"- ours/{s}: train {tr:.2f}x, eval {ev:.2f}x, peak memory {mem:.2f}x, "
            f"F1 {df1:+.4f} ({'; '.join(checks)})"
        )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data", default=None, help="data.name (default: ../shared/wikiann he, else demo)"
    )
    p.add_argument("--data-config", default=None, help="data.config (he for WikiANN)")
    p.add_argument("--max-train-samples", type=int, default=None)
    p.add_argument("--max-eval-samples", type=int, default=None)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--eval-batch-size", type=int, default=None, help="default: --batch-size")
    p.add_argument("--lr", type=float, default=1e-3, help="random-init model: a high lr learns")
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--device", choices=["cpu", "auto"], default="cpu")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    p.add_argument("--model", type=Path, default=None, help="existing model dir (else built)")
    p.add_argument("--tiny", action="store_true", help="build a tiny model (tests)")
    p.add_argument("--work-dir", type=Path, default=REPO / "outputs" / "benchmark")
    p.add_argument("--results", type=Path, default=HERE / "RESULTS.md", help="'-': do not write")
    a = p.parse_args(argv)
    if a.data is None:
        a.data, default_config = default_data()
        a.data_config = a.data_config or default_config
    elif a.data not in ("demo",) and Path(a.data).exists():
        a.data = str(Path(a.data).resolve())  # subprocesses run in the repository root
    a.eval_batch_size = a.eval_batch_size or a.batch_size
    a.systems = [s for s in a.systems.split(",") if s]
    unknown = set(a.systems) - set(SYSTEMS)
    if unknown:
        p.error(f"--systems: unknown {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    return a


def main(argv: list[str] | None = None) -> dict[str, dict]:
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    a.load_at_start = os.getloadavg()[0]  # other processes on the machine skew every system
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    work = a.work_dir.resolve() / stamp
    work.mkdir(parents=True, exist_ok=False)
    model = a.model.resolve() if a.model else None
    if model is None:
        shape = TINY_SHAPE if a.tiny else {}
        model = build(work / "model", a.data, a.data_config, seed=a.seed, **shape)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.update({"OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)})
    runs: dict[str, list[dict]] = {s: [] for s in a.systems}
    done: list[str] = []  # one line per run, in the order they ran
    for r in range(a.repeats):
        order = a.systems if r % 2 == 0 else a.systems[::-1]
        for s in order:
            run_dir, start = work / f"{s}-r{r}", time.perf_counter()
            if s == "ours":
                m = ours(a, model, run_dir, env)
            else:
                m = trainer(a, model, run_dir, env, group_by_length=s == "trainer_gbl")
            runs[s].append(m)
            done.append(
                f"{s} (repeat {r + 1}): train {m['train']:.1f}/s, eval {m['eval']:.1f}/s, "
                f"{m['memory']:.0f} MiB, F1 {m['f1']:.4f}"
            )
            wall = time.perf_counter() - start
            print(f"repeat {r + 1}/{a.repeats} {s} ({wall:.0f} s): " + json.dumps(m), flush=True)
    summary = summarise(runs)
    lines = [table(summary), "", *ratios(summary)]
    print("\n".join(lines))
    (work / "results.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=1))
    if str(a.results) != "-":
        write_results(a, argv, done, lines, model)
    return summary


def results_section(
    title: str,
    command: str,
    about: str,
    lines: list[str],
    runs_heading: str | None = None,
    runs: list[str] = (),
) -> list[str]:
    """The lines of one benchmark's section of RESULTS.md (every script here appends one): its
    dated title, the command that reproduces it, what ran on which machine (`about`), its table
    and ratios (`lines`), and under `runs_heading` each run in the order they ran."""
    section = [
        f"## {dt.datetime.now():%Y-%m-%d %H:%M}: {title}",
        "",
        "```",
        command,
        "```",
        "",
        about,
        "",
        *lines,
    ]
    return [*section, "", runs_heading, *runs] if runs_heading else section


def write_results(a, argv: list[str], done: list[str], lines: list[str], model: Path) -> None:
    import torch
    import transformers

    command = "HF_HUB_OFFLINE=1 python experiments/benchmark/bench.py " + shlex.join(argv)
    info = json.loads((model / "benchmark_model.json").read_text())
    about = (
        f"Data {a.data} ({a.data_config}), max_train_samples {a.max_train_samples}, "
        f"max_eval_samples {a.max_eval_samples}; {a.epochs} epochs, batch {a.batch_size}, eval "
        f"batch {a.eval_batch_size}, lr {a.lr}, warm-up {a.warmup_steps}, seed {a.seed}, "
        f"{a.threads} thread(s), {a.repeats} repeat(s), device {a.device}. Model: hidden "
        f"{info['hidden']}, {info['layers']} layers, {info['heads']} heads, intermediate "
        f"{info['intermediate']}, vocabulary {info['vocab']}, {info['parameters'] / 1e6:.2f}M "
        f"parameters. Machine: {platform.machine()}, {os.cpu_count()} CPUs visible, torch "
        f"{torch.__version__}, transformers {transformers.__version__}, load average "
        f"{a.load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end."
    )
    title = f"{Path(a.data).name} {a.data_config or ''}".rstrip()
    runs = [f"  - {line}" for line in done]
    section = [
        *results_section(
            title, command.strip(), about, lines, "Runs, in the order they ran:", runs
        ),
        "",
    ]
    a.results.parent.mkdir(parents=True, exist_ok=True)
    new = not a.results.exists()
    with open(a.results, "a") as f:
        if new:
            f.write("# Benchmark results\n\nSections are appended by bench.py, newest last.\n\n")
        f.write("\n".join(section) + "\n")


if __name__ == "__main__":
    main()

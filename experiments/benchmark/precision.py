"""bf16 against fp32 on the CPU: the same training run under trainer.precision=fp32 and =bf16.

    HF_HUB_OFFLINE=1 python experiments/benchmark/precision.py --repeats 2 -- \
        experiment=wikiann_en_minilm data.name=../shared/wikiann data.max_train_samples=1000 \
        data.max_eval_samples=1000 trainer.epochs=1

Every run is `python -m ner.train OVERRIDES trainer.precision=P` in its own subprocess, on the
CPU, with one intra-op thread (`--threads`: OMP_NUM_THREADS and trainer.threads) and no test;
the repeats alternate the order (fp32, bf16, then bf16, fp32) so a busy machine favours neither.
Per precision (median over repeats): training sentences/s (`train_samples_per_second` of the
final log entry: optimizer steps only), evaluation sentences/s (mean over the per-epoch
evaluations) and the final validation F1; then bf16/fp32 ratios. The table and the exact
command are printed and appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from bench import results_section, run_measured  # noqa: E402

PRECISIONS = ("fp32", "bf16")


def one_run(overrides: list[str], precision: str, threads: int, run_dir: Path, env: dict) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "ner.train",
        *overrides,
        f"trainer.precision={precision}",
        f"trainer.threads={threads}",
        "trainer.device=cpu",
        "trainer.progress=false",
        "trainer.eval_test=false",
        f"hydra.run.dir={run_dir}",
    ]
    peak = run_measured(cmd, env, run_dir.parent / f"{run_dir.name}.log")
    history = json.loads((run_dir / "log_history.json").read_text())
    evals = [e for e in history if "eval_f1" in e]
    return {
        "train": history[-1]["train_samples_per_second"],
        "eval": statistics.mean(e["eval_samples_per_second"] for e in evals),
        "f1": evals[-1]["eval_f1"],
        "memory": peak,
    }


def summary_lines(runs: dict[str, list[dict]]) -> list[str]:
    med = {p: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for p, rs in runs.items()}
    lines = [
        "| precision | train sentences/s | eval sentences/s | peak memory MiB | final val F1 |",
        "|---|---|---|---|---|",
    ]
    for p, m in med.items():
        lines.append(
            f"| {p} | {m['train']:.1f} | {m['eval']:.1f} | {m['memory']:.0f} | {m['f1']:.4f} |"
        )
    b, f = med["bf16"], med["fp32"]
    lines += [
        "",
        f"- bf16/fp32: train {b['train'] / f['train']:.2f}x, eval {b['eval'] / f['eval']:.2f}x, "
        f"F1 {b['f1'] - f['f1']:+.4f} (bf16 {b['f1']:.4f}, fp32 {f['f1']:.4f})",
    ]
    return lines


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work-dir", type=Path, default=REPO / "outputs" / "benchmark_precision")
    p.add_argument("--results", type=Path, default=HERE / "RESULTS.md", help="'-': do not write")
    p.add_argument("overrides", nargs="*", help="the run's overrides, after --")
    a = p.parse_args(argv)
    load_at_start = os.getloadavg()[0]
    work = a.work_dir.resolve() / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    work.mkdir(parents=True, exist_ok=False)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.update({"OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)})
    runs: dict[str, list[dict]] = {q: [] for q in PRECISIONS}
    done = []
    for r in range(a.repeats):
        for q in PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]:
            m = one_run(a.overrides, q, a.threads, work / f"{q}-r{r}", env)
            runs[q].append(m)
            done.append(
                f"  - {q} repeat {r + 1}: train {m['train']:.1f}/s, eval {m['eval']:.1f}/s, "
                f"{m['memory']:.0f} MiB, F1 {m['f1']:.4f}"
            )
            print(done[-1].strip(), flush=True)
    lines = summary_lines(runs)
    print("\n".join(lines))
    (work / "results.json").write_text(json.dumps(runs, indent=1))
    if str(a.results) != "-":
        import torch

        command = "HF_HUB_OFFLINE=1 python experiments/benchmark/precision.py " + shlex.join(argv)
        machine = (
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs visible, torch "
            f"{torch.__version__}, {a.threads} thread(s), {a.repeats} repeat(s), load average "
            f"{load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end."
        )
        title = "bf16 against fp32 on the CPU"
        section = results_section(
            title, command, machine, lines, "Per run (in the order they ran):", done
        )
        with open(a.results, "a", encoding="utf-8") as f:
            f.write("\n" + "\n".join(section) + "\n")
    return runs


if __name__ == "__main__":
    main()

"""The demo under a bounded synthetic load: OpenMP's wait policy and the thread count (issue 18).

    HF_HUB_OFFLINE=1 python experiments/benchmark/threads_load.py --load 2 --epochs 2 --repeats 2

Starts `--load` busy processes (`while True: pass`, killed at the end and after `--max-load-s`
at the latest), then runs the demo (`python -m ner.train`, its defaults but `--epochs`, progress
off, no cache)
once per system per repeat, alternating the order, each in its own subprocess with
OMP_NUM_THREADS and OMP_WAIT_POLICY unset:

- `spin`: the code before this change: torch is imported before `ner`, so OpenMP keeps its
  default wait policy (a waiting thread spins before it sleeps); torch's default thread count.
- `default`: `python -m ner.train` as it is now (OMP_WAIT_POLICY=PASSIVE from ner/__init__.py);
  torch's default thread count.
- `threads1`: the same with trainer.threads=1.

Prints a table (wall seconds of the whole run, training sentences/s from log_history.json, the
validation F1) and the ratios to `default`; appends them to RESULTS.md unless `--results -`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = ["hydra.run.dir={dir}", "trainer.progress=false", "data.cache_dir=null"]
SPIN = "import torch, runpy; runpy.run_module('ner.train', run_name='__main__', alter_sys=True)"
SYSTEMS = {
    "spin": [sys.executable, "-c", SPIN, *DEMO],
    "default": [sys.executable, "-m", "ner.train", *DEMO],
    "threads1": [sys.executable, "-m", "ner.train", *DEMO, "trainer.threads=1"],
}


def run(name: str, run_dir: Path, epochs: int | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env["PYTHONPATH"] = str(REPO)
    cmd = [a.format(dir=run_dir) for a in SYSTEMS[name]]
    cmd += [f"trainer.epochs={epochs}"] if epochs else []
    tic = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - tic
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    history = json.loads((run_dir / "log_history.json").read_text())
    evals = [e for e in history if "eval_f1" in e]
    return {
        "wall": wall,
        "train": history[-1]["train_samples_per_second"],
        "f1": evals[-1]["eval_f1"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--load", type=int, default=2, help="busy processes beside the runs")
    p.add_argument("--epochs", type=int, default=None, help="trainer.epochs (default: the demo's)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--max-load-s", type=int, default=1800, help="the load ends after this at most")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--results", default=str(Path(__file__).parent / "RESULTS.md"))
    a = p.parse_args()
    names = a.systems.split(",")
    busy = [
        subprocess.Popen(["timeout", str(a.max_load_s), sys.executable, "-c", "while True: pass"])
        for _ in range(a.load)
    ]
    rows: dict[str, list[dict]] = {n: [] for n in names}
    try:
        with tempfile.TemporaryDirectory() as work:
            for r in range(a.repeats):
                order = names if r % 2 == 0 else names[::-1]
                for name in order:
                    rows[name].append(run(name, Path(work) / f"{name}-{r}", a.epochs))
                    print(name, rows[name][-1], flush=True)
            load = os.getloadavg()[0]
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    med = {n: {k: statistics.median(x[k] for x in rows[n]) for k in rows[n][0]} for n in names}
    base = med.get("default")
    lines = [
        "| system | wall s | train sentences/s | val F1 | wall / default |",
        "|---|---|---|---|---|",
    ]
    for n in names:
        ratio = f"{med[n]['wall'] / base['wall']:.2f}" if base else "-"
        m = med[n]
        lines.append(f"| {n} | {m['wall']:.1f} | {m['train']:.1f} | {m['f1']:.4f} | {ratio} |")
    command = "HF_HUB_OFFLINE=1 python experiments/benchmark/threads_load.py " + shlex.join(
        sys.argv[1:]
    )
    head = (
        f"## {dt.datetime.now():%Y-%m-%d %H:%M} threads under load\n\n```\n{command}\n```\n\n"
        f"The demo ({a.epochs or 'its'} epochs), {a.load} busy processes beside it, {a.repeats} repeat(s) (medians), "
        f"{os.cpu_count()} CPUs visible, load average {load:.1f} at the end.\n\n"
    )
    text = head + "\n".join(lines) + "\n"
    print(text)
    if a.results != "-":
        with open(a.results, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()

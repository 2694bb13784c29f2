"""The GPU benchmark: the real loop (`python -m ner.train`) against the Hugging Face Trainer
(trainer_run_ner.py) on one device, at the reference card's batch 3 (fp32 and bf16) and at
batch 32 (bf16).

    HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py                        # one H200: ~5 min
    HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py --tiny --device cpu    # CPU, ~1 min
    HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py --strategies --nproc 8  # fsdp vs ddp

How long, on one H200 (an estimate from the rates issue 27 measured there, not yet timed as a
whole): about 30 s to build the model directory, then six runs (3 settings x 2 systems) of
--steps 300 optimizer steps and one evaluation of --eval-sentences 1000: about 75 s of training
and 15 s of evaluation in all, and 15-30 s of start-up per run (imports, loading 1.1 GB of
weights, tokenizing; ours also writes its epoch checkpoint, the weights and the Adam
state: several GiB, and its export): about 5 minutes, within the 6 that let a 15-minute device
lease run it twice. A loop that compiles or captures graphs at its first steps adds that time to
its runs (and to its figures: see below). `--tiny --device cpu` runs the same comparison with a tiny model on the
demo set in about a minute of CPU (tests/test_benchmark.py).

What runs. build_model.py writes an xlm-roberta-base-shaped model directory (hidden 768, 12
layers, 12 heads, intermediate 3072, an embedding table of 250002 rows: 277.5M parameters,
random init, seeded) with a SentencePiece tokenizer of 8000 pieces trained on the training
sentences (WikiANN-he from ../shared/wikiann when it is there, else the demo set); `--model DIR`
reuses one. Both systems load that directory and read the same sentences (the first batch x
--steps training and --eval-sentences validation sentences, through ner.data.corpus; fewer when
the data has fewer: each run's line says its steps). Per setting (batch, precision) each system
runs once in its own subprocess, the order alternating from one setting to the next (ours
first, then the Trainer first, ...): one epoch, the card's
lr 2e-5, no warm-up, the linear schedule, clipping 1.0, batches of similar lengths on both sides
(the loop's group_by_length, the Trainer's `group_by_length`), evaluation at the training batch.
Ours: bench.py `ours` (its shared settings) with trainer.precision, trainer.bootstrap=0 and
trainer.keep_checkpoints=none, and whatever else the loop defaults to on the device (length
buckets on CUDA: trainer.length_buckets=auto); the Trainer: bench.py `trainer`, `--bf16` for bf16.

The figures, read from what each run leaves (timing the subprocesses would count their start-up
and imports):
- train sentences/s and ms per optimizer step: ours, log_history.json's final entry
  (train_runtime over its steps: the optimizer steps only, evaluation and checkpoints not
  counted); the Trainer, on_epoch_begin..on_epoch_end (trainer_run_ner.py). Both include the
  first steps (warm-up, and any compilation or graph capture);
- eval sentences/s: one evaluation pass over the validation sentences (predictions and
  seqeval), eval_samples_per_second of both logs;
- peak memory: on CUDA torch.cuda.max_memory_allocated of the run's process (cuda_peak.py runs
  it); on the CPU its peak resident set (bench.py `run_measured`);
- the ratios ours/Trainer against issue 27's goals (training >= 3x at batch 3 and 32, evaluation
  >= 2x at every batch, bf16 not slower than fp32) and the card's estimated hours per system
  and precision: 666,700 optimizer steps at batch 3 at the measured ms per step, plus 100
  evaluations of 10,000 sentences at the measured batch-3 evaluation rate (goal: one hour).
The table and the exact command are printed and appended to RESULTS.md (`--results -`: not).

`--strategies` runs strategies.py's comparison instead: fsdp against ddp on `--nproc` CUDA
devices (default: all; nccl takes one device per rank, so it needs two or more), bf16, the
xlm-roberta-base shape (`--shape`), appended to RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
from argparse import Namespace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import bench  # noqa: E402
from build_model import build, default_data  # noqa: E402
from synthetic import BASE  # noqa: E402

SETTINGS = ((3, "fp32"), (3, "bf16"), (32, "bf16"))  # (batch, precision)
SYSTEMS = ("ours", "trainer")
TOKENIZER_PIECES = 8000
CARD = {"steps": 666_700, "batch": 3, "evaluations": 100, "eval_sentences": 10_000}
GOALS = {"train": 3.0, "eval": 2.0, "card_hours": 1.0}  # issue 27


def model_directory(a: Namespace, work: Path) -> Path:
    """The model both systems load: `--model`, or an xlm-roberta-base shape built here (--tiny:
    bench.py's tiny shape)."""
    if a.model:
        return a.model.resolve()
    if a.tiny:
        return build(work / "model", a.data, a.data_config, seed=a.seed, **bench.TINY_SHAPE)
    shape = {k: BASE[k] for k in ("hidden", "layers", "heads", "intermediate")}
    return build(
        work / "model",
        a.data,
        a.data_config,
        vocab=TOKENIZER_PIECES,
        model_vocab=BASE["vocab"],
        seed=a.seed,
        **shape,
    )


def one_run(a: Namespace, system: str, batch: int, precision: str, model: Path, work: Path):
    """One system at one setting, in its own subprocess; its figures (bench.py's, with ms per
    step, and peak GPU memory in GiB on CUDA)."""
    run = Namespace(**vars(a))  # bench.py's settings for this run
    run.batch_size = run.eval_batch_size = batch
    run.max_train_samples, run.max_eval_samples = batch * a.steps, a.eval_sentences
    run.epochs = 1
    if system == "ours":  # two epochs of half the steps: the second evaluation is past compiling
        run.max_train_samples, run.epochs = batch * (a.steps // 2), 2
    name = f"{system}-b{batch}-{precision}"
    peak_file = work / f"{name}.peak.json"
    launcher = [str(HERE / "cuda_peak.py"), str(peak_file)] if a.device == "cuda" else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.update({"OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)})
    if system == "ours":
        extra = {
            "trainer.precision": precision,
            "trainer.bootstrap": 0,
            "trainer.keep_checkpoints": "none",
            "trainer.group_by_length": "true",
        }
        m = bench.ours(run, model, work / name, env, extra, launcher)
    else:
        extra = ["--bf16"] if precision == "bf16" else []
        m = bench.trainer(run, model, work / name, env, True, extra, launcher)
    if a.device == "cuda":
        m["memory"] = json.loads(peak_file.read_text())["max_memory_allocated"] / 2**30
    # The rates that last: ours after its warm-up (compilation, graph capture), where it has
    # them; the Trainer compiles nothing, its rates are its own throughout.
    m["steady_ms"] = m.get("steady_step_ms") or m["step_ms"]
    m["eval_steady"] = m.get("eval_last") or m["eval"]
    m["train_steady"] = batch * 1000 / m["steady_ms"]
    return {"system": system, "batch": batch, "precision": precision, **m}


def card_hours(step_ms: float, eval_per_s: float) -> dict:
    """The card's training and evaluation time at these rates, in hours."""
    train = CARD["steps"] * step_ms / 1000 / 3600
    evaluation = CARD["evaluations"] * CARD["eval_sentences"] / eval_per_s / 3600
    return {"train": train, "eval": evaluation, "total": train + evaluation}


def met(value: float, goal: float, at_most: bool = False) -> str:
    return "met" if (value <= goal if at_most else value >= goal) else "NOT met"


def summary_lines(runs: list[dict], device: str) -> list[str]:
    """The table (one row per setting and system), the ratios against the goals, the card."""
    memory = "peak GPU memory GiB" if device == "cuda" else "peak memory MiB (resident)"
    lines = [
        f"| batch | precision | system | train sentences/s | ms per step | ms per step after "
        f"warm-up | eval sentences/s | eval sentences/s after warm-up | {memory} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    # A run without after-warm-up figures (the Trainer's, or a test's) stands for them itself.
    runs = [
        {
            **r,
            "steady_ms": r.get("steady_ms", r["step_ms"]),
            "eval_steady": r.get("eval_steady", r["eval"]),
            "train_steady": r.get("train_steady", r["train"]),
        }
        for r in runs
    ]
    by = {(r["batch"], r["precision"], r["system"]): r for r in runs}
    for r in runs:
        mem = f"{r['memory']:.2f}" if device == "cuda" else f"{r['memory']:.0f}"
        lines.append(
            f"| {r['batch']} | {r['precision']} | {r['system']} | {r['train']:.1f} | "
            f"{r['step_ms']:.1f} | {r['steady_ms']:.1f} | {r['eval']:.1f} | "
            f"{r['eval_steady']:.1f} | {mem} |"
        )
    lines.append("")
    for batch, precision in dict.fromkeys((r["batch"], r["precision"]) for r in runs):
        o, t = by.get((batch, precision, "ours")), by.get((batch, precision, "trainer"))
        if o and t:
            # After warm-up on both sides: a 100-epoch run's rates.
            train = o["train_steady"] / t["train_steady"]
            evaluation = o["eval_steady"] / t["eval_steady"]
            lines.append(
                f"- batch {batch} {precision}, ours/Trainer: train {train:.2f}x "
                f"(>= {GOALS['train']:g}x: {met(train, GOALS['train'])}), eval "
                f"{evaluation:.2f}x (>= {GOALS['eval']:g}x: {met(evaluation, GOALS['eval'])})"
            )
    for system in SYSTEMS:
        fp32, bf16 = (
            by.get((CARD["batch"], "fp32", system)),
            by.get((CARD["batch"], "bf16", system)),
        )
        if fp32 and bf16:
            train = bf16["train_steady"] / fp32["train_steady"]
            evaluation = bf16["eval_steady"] / fp32["eval_steady"]
            goal = f" (>= 1x: {met(min(train, evaluation), 1.0)})" if system == "ours" else ""
            lines.append(
                f"- batch {CARD['batch']} bf16/fp32, {system}: train {train:.2f}x, eval "
                f"{evaluation:.2f}x{goal}"
            )
    for r in runs:
        if r["batch"] == CARD["batch"]:
            h = card_hours(r["steady_ms"], r["eval_steady"])  # a 100-epoch run is past warm-up
            goal = (
                f" (<= 1 h: {met(h['total'], 1.0, at_most=True)})" if r["system"] == "ours" else ""
            )
            lines.append(
                f"- the card's {CARD['steps']:,} steps at batch {CARD['batch']} + "
                f"{CARD['evaluations']} evaluations of {CARD['eval_sentences']:,} sentences, "
                f"{r['system']} {r['precision']}: training {h['train']:.2f} h + evaluation "
                f"{h['eval']:.2f} h = {h['total']:.2f} h{goal}"
            )
    return lines


def parse_args(argv: list[str] | None = None) -> Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--tiny", action="store_true", help="a tiny model on the demo set (CPU tests)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per run (300; 4)")
    p.add_argument("--eval-sentences", type=int, default=None, help="per evaluation (1000; 24)")
    p.add_argument(
        "--settings",
        default=",".join(f"{b}:{p}" for b, p in SETTINGS),
        help="batch:precision,... (default: the three of issue 27)",
    )
    p.add_argument(
        "--data", default=None, help="data.name (default: ../shared/wikiann he, else demo)"
    )
    p.add_argument("--data-config", default=None)
    p.add_argument("--model", type=Path, default=None, help="an existing model directory")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads per run (cuda: 4; cpu: 1)"
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--work-dir", type=Path, default=REPO / "outputs" / "benchmark_gpu")
    p.add_argument("--results", type=Path, default=HERE / "RESULTS.md", help="'-': do not write")
    p.add_argument(
        "--strategies",
        action="store_true",
        help="fsdp against ddp on --nproc CUDA devices instead (strategies.py, nccl)",
    )
    p.add_argument("--nproc", type=int, default=None, help="--strategies: ranks (all GPUs)")
    p.add_argument("--shape", default="base", help="--strategies: tiny, small, base, large")
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="--strategies: fp32")
    a = p.parse_args(argv)
    a.steps = a.steps or (4 if a.tiny else 300)
    a.eval_sentences = a.eval_sentences or (24 if a.tiny else 1000)
    a.settings = [(int(b), prec) for b, prec in (s.split(":") for s in a.settings.split(",") if s)]
    if a.tiny and a.data is None:
        a.data = "demo"
    if a.data is None:
        a.data, a.data_config = default_data()
    elif a.data != "demo" and Path(a.data).exists():
        a.data = str(Path(a.data).resolve())  # subprocesses run in the repository root
    # bench.py's shared settings: the card's learning rate (a random-init model of this size
    # diverges at bench.py's 1e-3), no warm-up.
    a.lr, a.warmup_steps = 2e-5, 0
    return a


def strategies_main(a: Namespace) -> dict:
    """strategies.py's comparison on this machine's GPUs."""
    import strategies
    import torch

    nproc = a.nproc or torch.cuda.device_count()
    return strategies.main(
        [
            "--device=cuda",
            f"--nproc={nproc}",
            f"--shape={'tiny' if a.tiny else a.shape}",
            f"--precision={'bf16' if a.bf16 else 'fp32'}",
            f"--seed={a.seed}",
        ]
    )


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    if a.strategies:
        return strategies_main(a)
    import torch

    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this machine has no CUDA device; use --device cpu")
    a.threads = a.threads or (4 if a.device == "cuda" else 1)
    a.load_at_start = os.getloadavg()[0]
    work = a.work_dir.resolve() / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    work.mkdir(parents=True, exist_ok=False)
    model = model_directory(a, work)
    info = json.loads((model / "benchmark_model.json").read_text())
    device = torch.cuda.get_device_name(0) if a.device == "cuda" else platform.machine()
    print(
        f"device {device}; model {model} ({info['parameters'] / 1e6:.2f}M parameters); data "
        f"{a.data} {a.data_config or ''}; {a.steps} steps per run, {a.eval_sentences} "
        "evaluation sentences",
        flush=True,
    )
    runs = []
    for k, (batch, precision) in enumerate(a.settings):
        for system in SYSTEMS if k % 2 == 0 else SYSTEMS[::-1]:
            r = one_run(a, system, batch, precision, model, work)
            runs.append(r)
            memory = f"{r['memory']:.2f} GiB" if a.device == "cuda" else f"{r['memory']:.0f} MiB"
            print(
                f"- batch {batch} {precision} {system}: {r['steps']} steps, train "
                f"{r['train']:.1f} sentences/s, {r['step_ms']:.1f} ms/step, eval "
                f"{r['eval']:.1f} sentences/s, peak {memory}",
                flush=True,
            )
    runs.sort(key=lambda r: (a.settings.index((r["batch"], r["precision"])), r["system"]))
    lines = summary_lines(runs, a.device)
    print("\n".join(lines), flush=True)
    report = {"device": device, "model": info, "runs": runs}
    (work / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    if str(a.results) != "-":
        write_results(a, argv, device, info, lines)
    return report


def write_results(a: Namespace, argv: list[str], device: str, info: dict, lines: list[str]):
    import torch
    import transformers

    command = "HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py " + shlex.join(argv)
    about = (
        f"Data {a.data} ({a.data_config}), {a.steps} optimizer steps per run, "
        f"{a.eval_sentences} evaluation sentences at the training batch; model: hidden "
        f"{info['hidden']}, {info['layers']} layers, vocabulary {info.get('model_vocab')} "
        f"({info['vocab']} tokenizer pieces), {info['parameters'] / 1e6:.1f}M parameters. "
        f"Machine: {device}, {os.cpu_count()} CPUs visible, {a.threads} thread(s) per run, "
        f"torch {torch.__version__}, transformers {transformers.__version__}; load average "
        f"{a.load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end."
    )
    title = f"the loop against the Trainer on {device}"
    section = [*bench.results_section(title, command.strip(), about, lines), ""]
    a.results.parent.mkdir(parents=True, exist_ok=True)
    with open(a.results, "a", encoding="utf-8") as f:
        f.write("\n" + "\n".join(section) + "\n")


if __name__ == "__main__":
    main()

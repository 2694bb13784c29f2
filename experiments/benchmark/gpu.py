"""The GPU benchmark: the real loop (`python -m ner.train`) against the Hugging Face Trainer
(trainer_run_ner.py) on one device, at the reference card's batch 3 (fp32 and bf16) and at
batch 32 (bf16); the loop twice on CUDA, with its default (torch.compile) and with whole-step
CUDA graphs (trainer.step_graphs), so that one run decides which should be the default there.

    HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py                        # one H200: ~5 min
    HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py --tiny --device cpu    # CPU, ~1 min
    HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py --strategies --nproc 8  # fsdp vs ddp

On a device lease: device_prepare.sh (here) puts what the H200 lacks in .device/ (wheels,
WikiANN he, step_floor.py), and device_run.sh (there) installs them, runs tests/test_cuda.py and
this script, and leaves the log, the table and results.json in $OUT; see their headers.

How long, on one H200: an estimate, not yet timed as a whole. From issue 27's measurements (the
Trainer's 110, 54 and 500 training sentences/s at batch 3 fp32, 3 bf16 and 32 bf16, its 440,
300 and 2,500 evaluation sentences/s; ours taken at the goal's 3x and 2x) and the 15-30 s of
start-up a run took there (imports, loading 1.1 GB of weights, tokenizing; ours also writes an
epoch checkpoint of weights and Adam state, 3.3 GB, twice, and its export): about 30 s to build
the model directory, then nine runs (3 settings x 3 systems) of --steps 200 optimizer steps and
--eval-sentences 500 evaluation sentences: about 50 s of training, 15 s of evaluation and
135-270 s of start-up in all, so 4-6 minutes, within the 6 that let a 15-minute device lease
run it twice. Not in that figure: torch.compile's compilation in ours' first steps and first
evaluation (each of its runs compiles anew, per length bucket; never timed on the device) and
the graph captures of ours_graphs (one step per batch shape). Each run prints its wall seconds,
and `--stop-after SECONDS` starts no run past that time and summarises what ran, so that a
lease ends with a table whatever the compilation costs; a run that fails is reported with its
log's tail, the others go on, and the script exits non-zero naming it. `--tiny --device cpu` runs the same
comparison with a tiny model on the demo set in about a minute of CPU (tests/test_benchmark.py).

What runs. build_model.py writes an xlm-roberta-base-shaped model directory (hidden 768, 12
layers, 12 heads, intermediate 3072, an embedding table of 250002 rows: 277.5M parameters,
random init, seeded) with a SentencePiece tokenizer of 8000 pieces trained on the training
sentences (WikiANN-he from ../shared/wikiann when it is there, else the demo set); `--model DIR`
reuses one. Every system loads that directory and reads the same sentences (the first batch x
--steps training and --eval-sentences validation sentences, through ner.data.corpus; fewer when
the data has fewer: each run's line says its steps). Per setting (batch, precision) each system
runs once in its own subprocess, the order rotating by one from one setting to the next (ours,
ours_graphs, trainer; then ours_graphs, trainer, ours; ...), so that no system always runs
first or last: one epoch, the card's
lr 2e-5, no warm-up, the linear schedule, clipping 1.0, batches of similar lengths on both sides
(the loop's group_by_length, the Trainer's `group_by_length`), evaluation at the training batch.
The systems (`--systems`, default ours, ours_graphs and trainer on CUDA; on the CPU ours and
trainer, since step graphs serve on CUDA only and ours_graphs would run ours' loop again):
- ours: bench.py `ours` (its shared settings) with trainer.precision, trainer.bootstrap=0 and
  trainer.keep_checkpoints=none, and whatever else the loop defaults to on the device (on CUDA:
  length buckets, trainer.length_buckets=auto, and torch.compile in mode reduce-overhead,
  trainer.compile=auto);
- ours_graphs: ours with trainer.step_graphs=true, each whole optimizer step (and evaluation's
  forward pass) captured in one CUDA graph per batch shape (ner/step_graphs.py), eager kernels
  inside, everything else the same;
- ours_graphs_compiled (only when --systems names it: it compiles in every run): ours_graphs
  with trainer.compile=true, the compiler's kernels (mode default) inside those graphs;
- trainer: bench.py `trainer`, `--bf16` for bf16.

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
- the ratios of each of ours' variants to the Trainer against issue 27's goals (training >= 3x
  at batch 3 and 32, evaluation >= 2x at every batch, bf16 not slower than fp32) and the card's
  estimated hours per system and precision: 666,700 optimizer steps at batch 3 at the measured
  ms per step, plus 100 evaluations of 10,000 sentences at the measured batch-3 evaluation rate
  (goal: one hour);
- each graphed variant over ours, per setting (training and evaluation after warm-up) and over
  the settings: which should be the loop's default on CUDA.
The table and the exact command are printed and appended to RESULTS.md (`--results -`: not);
results.json in the work directory holds every run's figures, rewritten after each run
(`summary_lines(json.load(f)["runs"], "cuda")` gives the table of a comparison cut short).

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
import statistics
import sys
import time
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
SYSTEMS = ("ours", "ours_graphs", "ours_graphs_compiled", "trainer")
# The loop's variants, each the overrides it adds to ours' own: ours keeps the loop's defaults
# on the device, ours_graphs captures each whole optimizer step (and evaluation's forward) in
# one CUDA graph per shape, ours_graphs_compiled puts the compiler's kernels inside those graphs.
LOOPS = {
    "ours": {},
    "ours_graphs": {"trainer.step_graphs": "true"},
    "ours_graphs_compiled": {"trainer.step_graphs": "true", "trainer.compile": "true"},
}
# What a CUDA run compares unless --systems says otherwise: ours_graphs_compiled adds a
# compilation to every run of it, more than a 6-minute lease holds with the others.
CUDA_SYSTEMS = ("ours", "ours_graphs", "trainer")
# Step graphs serve on CUDA only: on the CPU ours_graphs runs ours' loop again, at ours' cost.
CPU_SYSTEMS = ("ours", "trainer")
TOKENIZER_PIECES = 8000
CARD = {"steps": 666_700, "batch": 3, "evaluations": 100, "eval_sentences": 10_000}
GOALS = {"train": 3.0, "eval": 2.0, "card_hours": 1.0}  # issue 27


def model_directory(a: Namespace, work: Path) -> Path:
    """The model every system loads: `--model`, or an xlm-roberta-base shape built here (--tiny:
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
    if system in LOOPS:  # two epochs of half the steps: the second evaluation is past compiling
        run.max_train_samples, run.epochs = batch * (a.steps // 2), 2
    name = f"{system}-b{batch}-{precision}"
    peak_file = work / f"{name}.peak.json"
    launcher = [str(HERE / "cuda_peak.py"), str(peak_file)] if a.device == "cuda" else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.update({"OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)})
    started = time.monotonic()
    if system in LOOPS:
        extra = {
            "trainer.precision": precision,
            "trainer.bootstrap": 0,
            "trainer.keep_checkpoints": "none",
            "trainer.group_by_length": "true",
            **LOOPS[system],
        }
        m = bench.ours(run, model, work / name, env, extra, launcher)
    else:
        extra = ["--bf16"] if precision == "bf16" else []
        m = bench.trainer(run, model, work / name, env, True, extra, launcher)
    m["wall_s"] = time.monotonic() - started  # start-up included: what the run costs a lease
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
    """The table (one row per setting and system), each of ours' variants against the Trainer
    and the goals, the card's hours, and each graphed variant against ours."""
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
    settings = list(dict.fromkeys((r["batch"], r["precision"]) for r in runs))
    for r in runs:
        mem = f"{r['memory']:.2f}" if device == "cuda" else f"{r['memory']:.0f}"
        lines.append(
            f"| {r['batch']} | {r['precision']} | {r['system']} | {r['train']:.1f} | "
            f"{r['step_ms']:.1f} | {r['steady_ms']:.1f} | {r['eval']:.1f} | "
            f"{r['eval_steady']:.1f} | {mem} |"
        )
    lines.append("")
    for batch, precision in settings:
        t = by.get((batch, precision, "trainer"))
        for loop in LOOPS:
            o = by.get((batch, precision, loop))
            if o and t:
                # After warm-up on both sides: a 100-epoch run's rates.
                train, evaluation = steady_ratios(o, t)
                lines.append(
                    f"- batch {batch} {precision}, {loop}/Trainer: train {train:.2f}x "
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
            goal = f" (>= 1x: {met(min(train, evaluation), 1.0)})" if system in LOOPS else ""
            lines.append(
                f"- batch {CARD['batch']} bf16/fp32, {system}: train {train:.2f}x, eval "
                f"{evaluation:.2f}x{goal}"
            )
    for r in runs:
        if r["batch"] == CARD["batch"]:
            h = card_hours(r["steady_ms"], r["eval_steady"])  # a 100-epoch run is past warm-up
            goal = (
                f" (<= 1 h: {met(h['total'], 1.0, at_most=True)})" if r["system"] in LOOPS else ""
            )
            lines.append(
                f"- the card's {CARD['steps']:,} steps at batch {CARD['batch']} + "
                f"{CARD['evaluations']} evaluations of {CARD['eval_sentences']:,} sentences, "
                f"{r['system']} {r['precision']}: training {h['train']:.2f} h + evaluation "
                f"{h['eval']:.2f} h = {h['total']:.2f} h{goal}"
            )
    lines += graphs_against_compile(by, settings)
    return lines


def steady_ratios(a: dict, b: dict) -> tuple[float, float]:
    """a's training and evaluation rates after warm-up over b's."""
    return a["train_steady"] / b["train_steady"], a["eval_steady"] / b["eval_steady"]


def graphs_against_compile(by: dict, settings: list[tuple[int, str]]) -> list[str]:
    """Each graphed loop over ours at each setting where both ran, then over those settings: the
    figures that decide the loop's default on CUDA (its own graphs, or torch.compile's)."""
    lines = []
    for loop in [name for name in LOOPS if name != "ours"]:
        pairs = [
            (
                batch,
                precision,
                *steady_ratios(by[batch, precision, loop], by[batch, precision, "ours"]),
            )
            for batch, precision in settings
            if (batch, precision, loop) in by and (batch, precision, "ours") in by
        ]
        lines += [
            f"- batch {batch} {precision}, {loop}/ours: train {train:.2f}x, eval {evaluation:.2f}x"
            for batch, precision, train, evaluation in pairs
        ]
        if pairs:
            trains, evals = [p[2] for p in pairs], [p[3] for p in pairs]
            lines.append(
                f"- {loop}/ours over {len(pairs)} setting(s): training faster at "
                f"{sum(x > 1 for x in trains)}, evaluation faster at {sum(x > 1 for x in evals)}; "
                f"geometric mean train {statistics.geometric_mean(trains):.2f}x, eval "
                f"{statistics.geometric_mean(evals):.2f}x"
            )
    return lines


def parse_args(argv: list[str] | None = None) -> Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--tiny", action="store_true", help="a tiny model on the demo set (CPU tests)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per run (200; 4)")
    p.add_argument("--eval-sentences", type=int, default=None, help="per evaluation (500; 24)")
    p.add_argument(
        "--settings",
        default=",".join(f"{b}:{p}" for b, p in SETTINGS),
        help="batch:precision,... (default: the three of issue 27)",
    )
    p.add_argument(
        "--systems",
        default=None,
        help=f"a subset of {','.join(SYSTEMS)} (default: {','.join(CUDA_SYSTEMS)} on CUDA, {','.join(CPU_SYSTEMS)} "
        "on the CPU)",
    )
    p.add_argument(
        "--stop-after",
        type=float,
        default=None,
        help="seconds from the start past which no run starts; the summary covers those done",
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
    a.steps = a.steps or (4 if a.tiny else 200)
    a.eval_sentences = a.eval_sentences or (24 if a.tiny else 500)
    a.settings = [(int(b), prec) for b, prec in (s.split(":") for s in a.settings.split(",") if s)]
    if a.systems is not None:
        a.systems = [s for s in a.systems.split(",") if s]
        unknown = [s for s in a.systems if s not in SYSTEMS]
        if unknown or not a.systems:
            p.error(f"--systems: {','.join(unknown) or 'none named'}; known: {','.join(SYSTEMS)}")
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
    if a.systems is None:
        a.systems = list(CUDA_SYSTEMS if a.device == "cuda" else CPU_SYSTEMS)
    a.systems = [s for s in SYSTEMS if s in a.systems]  # one order, whatever the command's
    a.load_at_start = os.getloadavg()[0]
    started = time.monotonic()
    work = a.work_dir.resolve() / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    work.mkdir(parents=True, exist_ok=False)
    model = model_directory(a, work)
    info = json.loads((model / "benchmark_model.json").read_text())
    device = torch.cuda.get_device_name(0) if a.device == "cuda" else platform.machine()
    print(
        f"device {device}; model {model} ({info['parameters'] / 1e6:.2f}M parameters); data "
        f"{a.data} {a.data_config or ''}; {a.steps} steps per run, {a.eval_sentences} "
        f"evaluation sentences; systems {', '.join(a.systems)}; model ready after "
        f"{time.monotonic() - started:.0f} s",
        flush=True,
    )
    report, ran = {"device": device, "model": info, "runs": [], "failed": []}, []
    for k, (batch, precision) in enumerate(a.settings):
        for system in rotated(a.systems, k):
            past = time.monotonic() - started
            if a.stop_after is not None and past > a.stop_after:
                print(
                    f"- batch {batch} {precision} {system}: not run ({past:.0f} s past the "
                    f"start, --stop-after {a.stop_after:g})",
                    flush=True,
                )
                continue
            try:
                r = one_run(a, system, batch, precision, model, work)
            except bench.RunFailed as failed:
                # One system's failure (a new path on a new device, say) leaves the others to
                # measure: a lease is too short to run the whole comparison again.
                print(f"- batch {batch} {precision} {system}: FAILED: {failed}", flush=True)
                report["failed"].append(f"batch {batch} {precision} {system}")
            else:
                ran.append(run_line(r, a.device))
                print(ran[-1], flush=True)
                report["runs"] = sorted([*report["runs"], r], key=lambda r: run_key(r, a.settings))
            # Rewritten after each run: a comparison cut short still leaves what it measured.
            (work / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = summary_lines(report["runs"], a.device)
    lines += [f"- {name}: failed (gpu.py's output has its log's tail)" for name in report["failed"]]
    print("\n".join(lines), flush=True)
    print(f"the comparison took {time.monotonic() - started:.0f} s", flush=True)
    if str(a.results) != "-":
        write_results(a, argv, device, info, lines, ran)
    if report["failed"]:
        raise SystemExit(f"failed: {', '.join(report['failed'])} (their log tails are above)")
    return report


def rotated(systems: list[str], k: int) -> list[str]:
    """The order of the systems at the k-th setting: rotated by one from one setting to the
    next, so that each runs first, in the middle and last as often (a busy or warming machine
    favours none)."""
    k %= len(systems)
    return systems[k:] + systems[:k]


def run_key(r: dict, settings: list[tuple[int, str]]) -> tuple[int, int]:
    """The table's order: by setting, then ours, ours_graphs, trainer."""
    return settings.index((r["batch"], r["precision"])), SYSTEMS.index(r["system"])


def run_line(r: dict, device: str) -> str:
    """One run's figures as it ends, in the log: warm-up included and after it, and its wall
    seconds (start-up included), which time the next lease's plan."""
    memory = f"{r['memory']:.2f} GiB" if device == "cuda" else f"{r['memory']:.0f} MiB"
    return (
        f"- batch {r['batch']} {r['precision']} {r['system']}: {r['steps']} steps, train "
        f"{r['train']:.1f} sentences/s, {r['step_ms']:.1f} ms/step ({r['steady_ms']:.1f} after "
        f"warm-up), eval {r['eval']:.1f} sentences/s ({r['eval_steady']:.1f} after warm-up), "
        f"peak {memory}, {r['wall_s']:.0f} s"
    )


def write_results(
    a: Namespace, argv: list[str], device: str, info: dict, lines: list[str], ran: list[str]
):
    import torch
    import transformers

    command = "HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py " + shlex.join(argv)
    about = (
        f"Systems {', '.join(a.systems)}. Data {a.data} ({a.data_config}), {a.steps} optimizer "
        f"steps per run, {a.eval_sentences} evaluation sentences at the training batch; model: "
        f"hidden "
        f"{info['hidden']}, {info['layers']} layers, vocabulary {info.get('model_vocab')} "
        f"({info['vocab']} tokenizer pieces), {info['parameters'] / 1e6:.1f}M parameters. "
        f"Machine: {device}, {os.cpu_count()} CPUs visible, {a.threads} thread(s) per run, "
        f"torch {torch.__version__}, transformers {transformers.__version__}; load average "
        f"{a.load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end."
    )
    title = f"the loop against the Trainer on {device}"
    heading = "Each run as it ended, in the order they ran (its last figure: wall seconds):"
    section = [*bench.results_section(title, command.strip(), about, lines, heading, ran), ""]
    a.results.parent.mkdir(parents=True, exist_ok=True)
    with open(a.results, "a", encoding="utf-8") as f:
        f.write("\n" + "\n".join(section) + "\n")


if __name__ == "__main__":
    main()

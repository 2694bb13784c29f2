"""fsdp against ddp: step time and peak memory per rank of the loop's training step on N processes.

    HF_HUB_OFFLINE=1 python experiments/benchmark/strategies.py --nproc 2 --threads 1 --repeats 2
    HF_HUB_OFFLINE=1 python experiments/benchmark/gpu.py --strategies --nproc 8   # CUDA, nccl

Every run is `torchrun --standalone --nproc_per_node=N strategies.py --worker ...` in its own
subprocess; the repeats alternate the order (ddp, fsdp, then fsdp, ddp) so a busy machine favours
neither. A worker builds an XLM-R-architecture model (random init, the same seed on every rank;
`--shape`: tiny, small (hidden 256, 4 layers, vocabulary 32000: 11.4M parameters, the CPU
default, most of them in the embeddings), deep (8 layers, vocabulary 8000: 8.4M, 75% in the
layers, as XL's 82%), base, large) and wraps it as the loop does (ner/prepare.py `on_device`: DDP, or FSDP2
per encoder layer and root, ner/sharding.py) under trainer.precision (`--precision`); its steps
are the loop's (ner/train.py: the loss summed over labelled tokens / the step's labelled tokens
of every rank x the world size, full-norm clipping at 1.0, fused AdamW of ner/optimization.py,
zero_grad(set_to_none)) on synthetic WikiANN-shaped batches (synthetic.py `make_batches`), different
on each rank. `--warmup` steps are untimed, then `--steps` are timed (synchronised at both ends).

Per rank it reports ms per optimizer step and its peak memory over the timed steps (the peak
is started over after the warm-up, so building and wrapping the model do not count): on CUDA
`torch.cuda.max_memory_allocated`; on the CPU the peak resident set (VmHWM, reset through
/proc/self/clear_refs) less the resident set before the model was built, after one thrown-away
step of a tiny model has loaded the libraries' code and caches; the allocator keeps memory it
freed (building, wrapping), so the CPU's figure is coarse (the workers run with glibc's
MALLOC_MMAP_THRESHOLD_=65536, which returns freed tensors to the system), and also the resident set when the
timed steps start (`at start`: the model and optimizer state, and what the allocator kept;
on CUDA memory_allocated then). Beside them the estimate the loop prints at start
(ner/memory.py: parameters, gradients, optimizer state and the strategy's copies; no
activations). The table (medians over repeats of each run's slowest rank and its largest peak)
and the exact command are printed and appended to RESULTS.md.
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
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
from bench import results_section  # noqa: E402
from synthetic import BASE, TINY, build, make_batches, sync  # noqa: E402

SHAPES = {
    "tiny": TINY,
    "small": {"vocab": 32000, "hidden": 256, "layers": 4, "heads": 4, "intermediate": 1024},
    # Its layers hold 75% of its 8.4M parameters (XLM-R XL's: 82%; small's: 28%): fsdp's case.
    "deep": {"vocab": 8000, "hidden": 256, "layers": 8, "heads": 4, "intermediate": 1024},
    "base": BASE,
    "large": {"vocab": 250002, "hidden": 1024, "layers": 24, "heads": 16, "intermediate": 4096},
}
STRATEGIES = ("ddp", "fsdp")
MIB = 2**20


def rss_bytes(field: str = "VmRSS") -> int:
    """This process's resident set now (VmRSS) or its peak (VmHWM), from Linux /proc."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith(f"{field}:"))
    return int(line.split()[1]) * 1024


def reset_peak(device: torch.device) -> None:
    """Start the peak memory over from now: CUDA's allocator statistics, or the process's peak
    resident set (VmHWM, reset to the resident set now through /proc/self/clear_refs)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def warm_libraries(device: torch.device, precision: str) -> None:
    """One step of a tiny model, thrown away: the kernels, autograd and the optimizer load their
    code and caches before the measured model exists, so the CPU's resident set before it holds
    them and the difference is the model's."""
    from ner.loss import loss_step

    tiny = build(TINY, device, 0)
    batch = {
        k: v.to(device)
        for k, v in make_batches(1, 2, 25.0, 8.6, TINY["vocab"], True, 0)[0].items()
        if k != "lengths"
    }
    _, loss = loss_step(tiny, batch, device, precision)
    loss.backward()
    torch.optim.AdamW(tiny.parameters(), fused=True).step()
    del tiny, batch, loss


def worker(a: argparse.Namespace) -> None:
    """One rank of one run: build, wrap, step; rank 0 writes every rank's figures to a.out."""
    from ner import distributed, memory, sharding
    from ner.loss import loss_step, step_tokens
    from ner.optimization import build_optimizer
    from ner.prepare import on_device

    env = distributed.setup(a.device)
    if env.device.type == "cpu":
        torch.set_num_threads(a.threads)
    if env.device.type == "cpu":
        warm_libraries(env.device, a.precision)
    base_rss = rss_bytes()
    model = build(SHAPES[a.shape], torch.device("cpu"), a.seed)  # identical on every rank
    estimate = memory.estimate(model, a.strategy, env.world_size, a.precision)
    trainer = SimpleNamespace(strategy=a.strategy, precision=a.precision, compile=False)
    wrapped, forward = on_device(model, env, trainer, None)
    optim = SimpleNamespace(
        lr=2e-5, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.0, head_lr=None, layer_decay=None
    )
    optimizer = build_optimizer(optim, model, env.device)
    vocab = SHAPES[a.shape]["vocab"]
    batches = make_batches(a.warmup + a.steps, a.batch, 25.0, 8.6, vocab, True, a.seed + env.rank)
    model.train()
    start, steady = 0.0, 0
    for i, b in enumerate(batches):
        if i == a.warmup:
            sync(env.device)
            distributed.barrier(env)
            # The model and its optimizer state: what the timed steps start from.
            cuda = env.device.type == "cuda"
            steady = torch.cuda.memory_allocated(env.device) if cuda else rss_bytes() - base_rss
            reset_peak(env.device)  # the peak of the timed steps, not of building and wrapping
            start = time.perf_counter()
        batch = {k: b[k].to(env.device) for k in ("input_ids", "attention_mask", "labels")}
        n_step = step_tokens([batch], env)
        with sharding.sync_gradients(wrapped, True, env):
            _, loss_sum = loss_step(forward, batch, env.device, a.precision)
            (loss_sum * env.world_size / n_step).backward()
        sharding.clip_gradients(model, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(env.device)
    step_ms = 1000 * (time.perf_counter() - start) / a.steps
    if env.device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(env.device)
    else:
        peak = rss_bytes("VmHWM") - base_rss
    mine = {
        "rank": env.rank,
        "step_ms": step_ms,
        "peak_mib": peak / MIB,
        "steady_mib": steady / MIB,
    }
    ranks = distributed.all_gather_objects(mine, env)
    if env.is_main:
        out = {"ranks": ranks, "estimate_mib": estimate.total / MIB, "estimate": estimate.line()}
        Path(a.out).write_text(json.dumps(out, indent=1))
    # Both ranks past the write before either leaves: a rank that tore down alone once left the
    # other waiting in gloo's destroy_process_group.
    distributed.barrier(env)
    distributed.teardown()


def one_run(a: argparse.Namespace, strategy: str, out: Path) -> dict:
    """A torchrun of `a.nproc` workers under `strategy`; its slowest rank and largest peak."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={a.nproc}",
        str(Path(__file__).resolve()),
        "--worker",
        f"--strategy={strategy}",
        f"--out={out}",
        f"--device={a.device}",
        f"--shape={a.shape}",
        f"--precision={a.precision}",
        f"--batch={a.batch}",
        f"--steps={a.steps}",
        f"--warmup={a.warmup}",
        f"--threads={a.threads}",
        f"--seed={a.seed}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "PYTHONPATH": str(REPO)}
    # glibc: every block from 64 KiB up is mapped apart and unmapped when freed, so the resident
    # set follows the live tensors instead of what the heap kept (the CPU's peak figure).
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=a.timeout)
    if done.returncode != 0:
        raise SystemExit(f"{strategy} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    r = json.loads(out.read_text())
    return {
        "step_ms": max(x["step_ms"] for x in r["ranks"]),
        "peak_mib": max(x["peak_mib"] for x in r["ranks"]),
        "steady_mib": max(x["steady_mib"] for x in r["ranks"]),
        "estimate_mib": r["estimate_mib"],
        "estimate": r["estimate"],
    }


def summary_lines(runs: dict[str, list[dict]], device: str) -> list[str]:
    keys = ("step_ms", "steady_mib", "peak_mib", "estimate_mib")
    med = {s: {k: statistics.median(r[k] for r in rs) for k in keys} for s, rs in runs.items()}
    how = "memory_allocated" if device == "cuda" else "resident set less the one before the model"
    lines = [
        f"| strategy | ms per step | MiB per rank at start ({how}) | peak MiB per rank | "
        "estimate MiB per rank |",
        "|---|---|---|---|---|",
    ]
    for s, m in med.items():
        lines.append(
            f"| {s} | {m['step_ms']:.1f} | {m['steady_mib']:.0f} | {m['peak_mib']:.0f} | "
            f"{m['estimate_mib']:.0f} |"
        )
    f, d = med["fsdp"], med["ddp"]
    lines += [
        "",
        f"- fsdp/ddp: step time {f['step_ms'] / d['step_ms']:.2f}x, at start "
        f"{f['steady_mib'] / d['steady_mib']:.2f}x, peak {f['peak_mib'] / d['peak_mib']:.2f}x, "
        f"estimate {f['estimate_mib'] / d['estimate_mib']:.2f}x",
        *(f"- {runs[s][0]['estimate']}" for s in runs),
    ]
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nproc", type=int, default=2, help="processes (ranks) per run")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--shape", choices=sorted(SHAPES), default=None, help="cpu: small, cuda: base")
    p.add_argument(
        "--precision", choices=["fp32", "bf16"], default=None, help="cpu: fp32, cuda: bf16"
    )
    p.add_argument("--batch", type=int, default=8, help="sentences per rank per step")
    p.add_argument("--steps", type=int, default=10, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per run")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads per process (CPU)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--timeout", type=int, default=900, help="seconds per run before it is killed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, default=REPO / "outputs" / "benchmark_strategies")
    p.add_argument("--results", type=Path, default=HERE / "RESULTS.md", help="'-': do not write")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--strategy", choices=STRATEGIES, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.shape = a.shape or ("base" if a.device == "cuda" else "small")
    a.precision = a.precision or ("bf16" if a.device == "cuda" else "fp32")
    return a


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    if a.worker:
        worker(a)
        return {}
    if a.device == "cuda" and torch.cuda.device_count() < a.nproc:
        raise SystemExit(
            f"--nproc {a.nproc} needs {a.nproc} CUDA devices (nccl takes one per rank); this "
            f"machine has {torch.cuda.device_count()}"
        )
    load_at_start = os.getloadavg()[0]
    work = a.work_dir.resolve() / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    work.mkdir(parents=True, exist_ok=False)
    runs: dict[str, list[dict]] = {s: [] for s in STRATEGIES}
    done = []
    for r in range(a.repeats):
        for s in STRATEGIES if r % 2 == 0 else STRATEGIES[::-1]:
            m = one_run(a, s, work / f"{s}-r{r}.json")
            runs[s].append(m)
            done.append(
                f"  - {s} repeat {r + 1}: {m['step_ms']:.1f} ms/step, at start "
                f"{m['steady_mib']:.0f} MiB, peak {m['peak_mib']:.0f} MiB per rank, estimate "
                f"{m['estimate_mib']:.0f} MiB"
            )
            print(done[-1].strip(), flush=True)
    lines = summary_lines(runs, a.device)
    print("\n".join(lines))
    (work / "results.json").write_text(json.dumps(runs, indent=1))
    if str(a.results) != "-":
        command = "HF_HUB_OFFLINE=1 python experiments/benchmark/strategies.py " + shlex.join(argv)
        name = torch.cuda.get_device_name(0) if a.device == "cuda" else platform.machine()
        machine = (
            f"Machine: {name}, {os.cpu_count()} CPUs visible, torch {torch.__version__}; "
            f"{a.nproc} processes x {a.threads} thread(s), shape {a.shape} "
            f"({SHAPES[a.shape]}), {a.precision}, batch {a.batch} per rank, {a.warmup} + "
            f"{a.steps} steps, {a.repeats} repeat(s); load average {load_at_start:.1f} at the "
            f"start, {os.getloadavg()[0]:.1f} at the end."
        )
        title = f"fsdp against ddp on {a.nproc} processes ({a.device})"
        section = results_section(
            title, command, machine, lines, "Per run (in the order they ran):", done
        )
        with open(a.results, "a", encoding="utf-8") as f:
            f.write("\n" + "\n".join(section) + "\n")
    return runs


if __name__ == "__main__":
    main()

"""Per-step cost of the ranks' agreement on a stop signal (ner/run/preemption.py).

Two gloo ranks run a fixed compute step (~15 ms of matmuls on one intra-op thread, plus the
loop's own per-step all-reduce of the token count), followed by no agreement, a blocking
all-reduce of an int, or the loop's asynchronous one (started at one boundary, read at the next).
The three variants alternate within the same processes, so they share the machine's state.

    OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node=2 \
        experiments/benchmark/stop_agreement.py
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.distributed as dist

from ner import distributed

ROUNDS, STEPS = 8, 60


def main() -> None:
    env = distributed.setup("cpu")
    torch.set_num_threads(1)
    a = torch.randn(384, 384)

    def compute() -> None:
        x = a
        for _ in range(12):
            x = x @ a
            x = x / x.norm()
        distributed.all_reduce_sum(torch.ones(()), env)

    def blocking() -> None:
        t = torch.zeros(1, dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)

    pending = []

    def overlapped() -> None:
        if pending:
            pending.pop()()
        pending.append(distributed.all_reduce_max_int_async(0, env))

    variants = {"none": lambda: None, "blocking": blocking, "async": overlapped}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, agree in variants.items():
            dist.barrier()
            start = time.perf_counter()
            for _ in range(STEPS):
                compute()
                agree()
            while pending:
                pending.pop()()
            times[name].append((time.perf_counter() - start) / STEPS * 1e3)
    if env.is_main:
        base = statistics.median(times["none"])
        for name, values in times.items():
            median = statistics.median(values)
            rounds = ", ".join(f"{v:.2f}" for v in values)
            print(f"{name:9s} {median:.3f} ms/step ({median / base:.3f}x none; rounds {rounds})")
    distributed.teardown()


if __name__ == "__main__":
    main()

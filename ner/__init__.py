"""ner: fine-tune XLM-RoBERTa for named-entity recognition with a hand-written DDP loop."""

import os

# Idle OpenMP threads sleep instead of spinning. torch's CPU kernels run on OpenMP (libgomp), whose
# default lets a thread that waits at the end of a parallel region spin for a while before it
# sleeps. On cores other processes share, the spinning threads take the time slices the thread
# being waited for needs, and every parallel region stalls: the demo took 187 s at torch's default
# 2 threads on a machine at load 5 instead of 21 s at 1 thread (experiments/benchmark/RESULTS.md,
# threads under load). libgomp reads this once, when torch is first imported: every entry point
# (`ner-train`, `python -m ner.train`, torchrun) imports this package first. A value already set
# (OMP_WAIT_POLICY=ACTIVE for a dedicated machine) is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

LABELS_WIKIANN = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]

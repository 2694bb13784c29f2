"""seqeval once per evaluation: ner.metrics against the four calls it replaced.

    HF_HUB_OFFLINE=1 python experiments/benchmark/metrics_speed.py --repeats 5

On the WikiANN he validation split (10,000 sentences; the demo's when ../shared/wikiann is
absent), with predictions made by changing 10% of the gold tags (seeded), times
`ner.metrics.entity_metrics` (one classification report plus word accuracy) against the
previous way (the report, then precision_score, recall_score and f1_score, each extracting the
entities again, plus accuracy), alternating the two, and checks that they agree exactly.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from seqeval.metrics import (
    accuracy_score,
    classification_report,
    f1_score,
    precision_score,
    recall_score,
)

from ner.config import DataConfig
from ner.data.corpus import load_corpus
from ner.metrics import entity_metrics

SHARED = Path(__file__).resolve().parents[3] / "shared" / "wikiann"


def four_calls(gold, pred) -> dict:
    """What ner.metrics did before: seqeval's report, then three more passes over the entities."""
    classification_report(gold, pred, output_dict=True, zero_division=0)
    return {
        "precision": precision_score(gold, pred, zero_division=0),
        "recall": recall_score(gold, pred, zero_division=0),
        "f1": f1_score(gold, pred, zero_division=0),
        "accuracy": accuracy_score(gold, pred),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    name, config = (str(SHARED), "he") if SHARED.is_dir() else ("demo", None)
    corpus = load_corpus(DataConfig(name=name, config=config))
    [validation] = corpus.eval_sets  # one set
    gold = [s.tags for s in validation.sentences["validation"]]
    rng = random.Random(0)
    pred = [[rng.choice(corpus.labels) if rng.random() < 0.1 else t for t in s] for s in gold]
    new, old = entity_metrics(gold, pred), four_calls(gold, pred)
    assert all(new[k] == old[k] for k in old), (new, old)
    times: dict[str, list[float]] = {"one report (now)": [], "four calls (before)": []}
    for _ in range(args.repeats):
        for label, f in (("one report (now)", entity_metrics), ("four calls (before)", four_calls)):
            start = time.perf_counter()
            f(gold, pred)
            times[label].append(time.perf_counter() - start)
    print(
        f"{name} ({config}) validation: {len(gold)} sentences, {args.repeats} alternating repeats"
    )
    for label, values in times.items():
        print(
            f"{label:20s} median {statistics.median(values):.3f} s  ({', '.join(f'{v:.3f}' for v in values)})"
        )
    ratio = statistics.median(times["four calls (before)"]) / statistics.median(
        times["one report (now)"]
    )
    print(f"speed-up of the metric step: {ratio:.2f}x")


if __name__ == "__main__":
    main()

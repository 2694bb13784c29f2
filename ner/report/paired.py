"""Is run A's F1 really above run B's on the same sentences? Paired tests over sentences, and over
seeds for groups of runs (ner-report --compare). numpy only.

Entity-level F1 is a ratio of corpus totals, not a mean over sentences, so no t-test applies; as
ner/report/bootstrap.py does, each sentence is scored once (`sentence_counts`: true positives,
predicted and gold entities) and a resampled or permuted corpus is a sum of those counts.

Two runs (`compare_runs`), the difference d = F1(A) - F1(B):
- the 95% interval is the paired bootstrap's: resample r draws the same sentence indices for
  both runs (row r of bootstrap.py's stream for `seed`), and the interval holds the 2.5th and
  97.5th percentiles of the resampled differences;
- the p-value is an approximate randomisation test's (Noreen 1989): in each of `rounds`
  rounds, every sentence's two predictions are swapped between the runs with probability 1/2,
  and p = (1 + #{|d_perm| >= |d_obs|}) / (1 + rounds). It is used rather than the bootstrap's
  p because it tests the null hypothesis itself (the two systems are exchangeable on every
  sentence) where the bootstrap's p must shift the resampled distribution to pretend it is the
  null's; Riezler & Maxwell (2005) found the bootstrap's p more often wrongly significant than
  approximate randomisation's on the same data, and Dror et al. (2018) recommend randomisation
  (or the bootstrap) for metrics like F1 whose distribution is unknown. Identical runs give
  d = 0 and p = 1; p is never below 1 / (1 + rounds).

Two groups of runs (seeds of two configurations: `compare_groups`), d = mean F1(A) - mean F1(B)
over each group's runs. The seed is a source of variance as large as the sentences (a group of
one seed says little about its configuration), so both levels are resampled or permuted:
- the interval is a two-level bootstrap's: resample r draws the sentences (one index vector
  for every run, as above) and, independently, each group's runs with replacement, and takes
  the difference of the drawn runs' mean F1 on the drawn sentences;
- the p-value is a permutation test over the runs (the unit of replication): under the null the
  two configurations are the same, so any k of the k + l runs could have been group A; p is the
  share of the C(k + l, k) splits (all, or `rounds` drawn ones when there are more) whose
  |difference of mean F1| is at least the observed one. With few seeds p cannot be small
  (3 against 3: at least 2/20 = 0.1), and `min_p` says so: that is the honest answer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from ner.report.bootstrap import PERCENTILES, Counts, resampled_counts, scores, sentence_counts

TOLERANCE = 1e-12  # |d_perm| >= |d_obs| up to float rounding of equal sums in another order
BLOCK = 1 << 22  # sentence draws per block of randomisation rounds (bounds the memory)
EXACT_SPLITS = 100_000  # enumerate every split of the runs up to this many, else draw `rounds`


def micro_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> np.ndarray:
    """Each sentence's (true positives, predicted, gold) entities over all types: (sentences, 3)."""
    c = sentence_counts(gold, pred)
    return np.stack([c.tp.sum(1), c.pred.sum(1), c.gold.sum(1)], axis=1)


def f1_of(counts: np.ndarray) -> float:
    """The corpus's micro F1 from its sentences' counts (as micro_counts gives them)."""
    return float(scores(*counts.sum(0))[2])


def _joint(runs: Sequence[np.ndarray]) -> Counts:
    """Runs' per-sentence counts as one Counts of a 'type' per run: resampled together, every run
    sees the same sentence indices."""
    types = tuple(str(i) for i in range(len(runs)))
    return Counts(types, *(np.stack([r[:, j] for r in runs], axis=1) for j in range(3)))


def _f1_resampled(runs: Sequence[np.ndarray], resamples: int, seed: int) -> np.ndarray:
    """Each run's F1 on each resampled corpus: (resamples, runs)."""
    drawn = resampled_counts(_joint(runs), resamples, seed)
    return scores(drawn[:, 0], drawn[:, 1], drawn[:, 2])[2]


def _interval(values: np.ndarray) -> list[float]:
    return [float(x) for x in np.percentile(values, PERCENTILES)]


def randomisation_p(a: np.ndarray, b: np.ndarray, rounds: int, seed: int) -> float:
    """Approximate randomisation p of |F1(a) - F1(b)|: sentence predictions swapped at random."""
    assert a.shape == b.shape and (a[:, 2] == b[:, 2]).all(), "not the same sentences"
    observed = abs(f1_of(a) - f1_of(b))
    differ = np.flatnonzero((a[:, :2] != b[:, :2]).any(1))  # swapping the others changes nothing
    delta = (b[differ, :2] - a[differ, :2]).astype(np.float64)  # (m, 2): tp, pred of b - a
    totals_a, totals_b = a.sum(0).astype(np.float64), b.sum(0).astype(np.float64)
    rng = np.random.default_rng(seed)
    at_least, rows = 0, max(1, BLOCK // max(1, len(differ)))
    for start in range(0, rounds, rows):
        swap = rng.random((min(rows, rounds - start), len(differ))) < 0.5
        moved = swap @ delta  # what the swapped sentences move from b to a: (rounds, 2)
        tp_a, pred_a = totals_a[0] + moved[:, 0], totals_a[1] + moved[:, 1]
        tp_b, pred_b = totals_b[0] - moved[:, 0], totals_b[1] - moved[:, 1]
        f1_a = scores(tp_a, pred_a, np.full_like(tp_a, totals_a[2]))[2]
        f1_b = scores(tp_b, pred_b, np.full_like(tp_b, totals_b[2]))[2]
        at_least += int((np.abs(f1_a - f1_b) >= observed - TOLERANCE).sum())
    return (1 + at_least) / (1 + rounds)


def compare_runs(a: np.ndarray, b: np.ndarray, resamples: int = 1000, seed: int = 0) -> dict:
    """Two runs' per-sentence counts (micro_counts) on the same sentences: {"f1_a", "f1_b",
    "difference" (a - b), "interval" (paired bootstrap, 95%), "p" (approximate randomisation,
    `resamples` rounds), "resamples", "seed"}."""
    f1 = _f1_resampled([a, b], resamples, seed)
    return {
        "f1_a": f1_of(a),
        "f1_b": f1_of(b),
        "difference": f1_of(a) - f1_of(b),
        "interval": _interval(f1[:, 0] - f1[:, 1]),
        "p": randomisation_p(a, b, resamples, seed),
        "resamples": resamples,
        "seed": seed,
    }


def compare_groups(
    group_a: Sequence[np.ndarray],
    group_b: Sequence[np.ndarray],
    resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Two groups of runs (each run's per-sentence counts, all on the same sentences): {"f1_a",
    "f1_b" (means over the runs), "std_a", "std_b" (sample standard deviations over the runs,
    None for one run), "difference", "interval" (two-level bootstrap), "p" (permutation over the
    runs), "min_p" (the smallest p this many runs allow), "splits" (how many splits p counts),
    "exact" (all splits, or drawn), "resamples", "seed"}. See the module docstring."""
    k, runs = len(group_a), [*group_a, *group_b]
    assert k and len(group_b), "each group needs a run"
    f1 = np.array([f1_of(r) for r in runs])
    observed = f1[:k].mean() - f1[k:].mean()

    # Two levels: the sentences (one index vector for all runs), then each group's runs.
    per_run = _f1_resampled(runs, resamples, seed)  # (resamples, runs)
    rng = np.random.default_rng([seed, 1])  # a stream of its own: the sentences' stays bootstrap's
    pick_a = rng.integers(0, k, size=(resamples, k))
    pick_b = k + rng.integers(0, len(group_b), size=(resamples, len(group_b)))
    rows = np.arange(resamples)[:, None]
    drawn = per_run[rows, pick_a].mean(1) - per_run[rows, pick_b].mean(1)

    n = len(runs)
    total = math.comb(n, k)
    if total <= EXACT_SPLITS:
        splits = [list(c) for c in itertools.combinations(range(n), k)]
    else:
        draw = np.random.default_rng([seed, 2])
        splits = [list(draw.permutation(n)[:k]) for _ in range(resamples)]
    at_least = 0
    for chosen in splits:
        mask = np.zeros(n, bool)
        mask[chosen] = True
        d = f1[mask].mean() - f1[~mask].mean()
        at_least += int(abs(d) >= abs(observed) - TOLERANCE)
    exact = total <= EXACT_SPLITS
    # Swapping the groups' names gives the same |d|: with k == l each split is counted twice.
    min_p = (2 if 2 * k == n else 1) / total if exact else 1 / len(splits)
    return {
        "f1_a": float(f1[:k].mean()),
        "f1_b": float(f1[k:].mean()),
        "std_a": float(f1[:k].std(ddof=1)) if k > 1 else None,
        "std_b": float(f1[k:].std(ddof=1)) if n - k > 1 else None,
        "difference": float(observed),
        "interval": _interval(drawn),
        "p": at_least / len(splits),
        "min_p": min_p,
        "splits": len(splits),
        "exact": exact,
        "resamples": resamples,
        "seed": seed,
    }

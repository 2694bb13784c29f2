"""The tables of `ner-report`: which columns, seed groups, and the formats (ner/report/tables.py).

By default a table holds what a reader compares: the swept keys, the status, best F1 (the mean
with several evaluation sets, then each set's), final and test F1, epochs and wall time; `--all`
adds every score at the best and last epoch, the best epoch and the error. Jobs that differ only
in a `seed` override are grouped: mean and sample standard deviation over the finished ones.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ner.metrics import names
from ner.report.tables import table


def scores() -> list[str]:
    """The scores of ner.metrics.METRICS, F1 first: the one people compare."""
    return sorted((n for n in names() if n != "loss"), key=lambda n: n != "f1")


def override_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every overridden key across the jobs, in order of first appearance."""
    return list(dict.fromkeys(k for r in rows for k in r["overrides"]))


def swept_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The overridden keys whose value differs between the jobs (a lone job: all of them);
    an override every job shares (experiment=..., trainer.progress=false) says nothing."""
    keys = override_keys(rows)
    if len(rows) < 2:
        return keys
    return [k for k in keys if len({r["overrides"].get(k, "") for r in rows}) > 1]


def seed_groups(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups of 2+ jobs whose overrides differ only in a `seed` key, with f1 mean and sample std.

    The statistics cover the group's finished jobs (n), each setting once; a running job's
    numbers are not final.
    """
    keys = swept_keys(rows)
    seed_keys = [k for k in keys if k.split(".")[-1] == "seed"]
    if not seed_keys:
        return []
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        rest = tuple((k, row["overrides"].get(k, "")) for k in keys if k not in seed_keys)
        groups.setdefault(rest, []).append(row)
    summaries = []
    for rest, members in groups.items():
        if len(members) < 2:
            continue
        members.sort(key=lambda r: r["job"])
        # A job that repeats another's settings (ner/tools/report.py) is one replicate, once.
        finished = [r for r in members if r["status"] == "finished" and not r.get("repeat_of")]
        summary: dict[str, Any] = {
            "group": " ".join(f"{k}={v}" for k, v in rest if v) or "(defaults)",
            "jobs": len(members),
            "seeds": " ".join(
                ",".join(r["overrides"].get(k, "") for k in seed_keys) for r in members
            ),
        }
        for column in ("best_f1", "final_f1"):
            values = [r[column] for r in finished if r[column] is not None]
            summary[f"{column}_n"] = len(values)
            summary[f"{column}_mean"] = statistics.fmean(values) if values else None
            summary[f"{column}_std"] = statistics.stdev(values) if len(values) > 1 else None
        summaries.append(summary)
    return summaries


def columns(rows: Sequence[dict[str, Any]], monitor: str, everything: bool) -> list[str]:
    """The columns of the table: by default what a reader compares (the swept keys, the status,
    best, per-set, final and test F1, epochs, wall time); `everything` adds every score at the
    best and the last epoch, the best epoch, the error and every override."""
    keys = override_keys(rows) if everything else swept_keys(rows)
    sets = [f"{s}_f1" for s in dict.fromkeys(s for r in rows for s in r["sets"])]
    extra = [] if monitor in {f"eval_{m}" for m in scores()} else ["monitor_best"]
    if not everything:
        return [
            "job",
            *keys,
            "status",
            "epochs",
            *extra,
            "best_f1",
            *sets,
            "final_f1",
            "test_f1",
            "wall_time_s",
        ]
    metrics = [f"{when}_{name}" for when in ("best", "final") for name in scores()]
    return [
        "job",
        *keys,
        "status",
        "epochs",
        "best_epoch",
        *extra,
        *metrics[:1],
        *sets,
        *metrics[1:],
        "test_f1",
        "wall_time_s",
        "error",
    ]


def flat_rows(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per row with a value per column (blank: a key the job kept at its default)."""
    keys = set(override_keys(rows))
    flat = [{**r, **{f"{s}_f1": v for s, v in r["sets"].items()}} for r in rows]
    return [{c: (r["overrides"].get(c, "") if c in keys else r.get(c)) for c in cols} for r in flat]


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "wall_time_s":
        minutes, seconds = divmod(round(value), 60)
        return f"{minutes // 60}h{minutes % 60:02d}m{seconds:02d}s"
    if isinstance(value, float):
        return f"{value:g}" if column == "best_epoch" else f"{value:.4f}"
    text = " ".join(str(value).split())  # one line per row
    return (text[:117] + "...") if len(text) > 120 else text


def _render(fmt: str, cols: Sequence[str], flat: Sequence[dict], headers: dict) -> str:
    """The table in `fmt`; CSV keeps every value as it is (full precision, seconds) for
    analysis, the other formats show it as a person reads it."""
    if fmt == "csv":
        cells = [["" if r[c] is None else str(r[c]) for c in cols] for r in flat]
        return table(fmt, list(cols), cells)
    cells = [[_cell(c, r[c]) for c in cols] for r in flat]
    return table(fmt, [headers.get(c, c) for c in cols], cells)


def _seed_table(fmt: str, groups: list[dict], everything: bool) -> str:
    """Seed groups: mean and sample std over the finished jobs, "0.7500 ± 0.0500 (n)"."""
    if everything:
        stats = [f"{c}_{s}" for c in ("best_f1", "final_f1") for s in ("n", "mean", "std")]
        return _render(fmt, ["group", "jobs", "seeds", *stats], groups, {})
    for g in groups:
        for c in ("best_f1", "final_f1"):
            mean, std, n = g[f"{c}_mean"], g[f"{c}_std"], g[f"{c}_n"]
            g[c] = "" if mean is None else f"{mean:.4f} ± {std or 0:.4f} ({n})"
    return _render(fmt, ["group", "jobs", "seeds", "best_f1", "final_f1"], groups, {})


def report(root: Path, rows: Sequence[dict], monitor: str, fmt: str, everything: bool) -> str:
    """The report in `fmt`: markdown (title, counts, the table, problems, seed groups), LaTeX
    (the table and the seed groups, booktabs) or CSV (the table)."""
    cols = columns(rows, monitor, everything)
    headers = {"wall_time_s": "wall_time", "monitor_best": f"best_{monitor}"}
    main_table = _render(fmt, cols, flat_rows(rows, cols), headers)
    groups = seed_groups(rows)
    if fmt == "csv":
        return main_table + "\n"
    if fmt == "latex":
        seeds = ["", "% seeds: mean ± sample std (n) over the finished jobs of each group"]
        seeds += [_seed_table(fmt, groups, everything)] if groups else []
        return "\n".join([main_table, *(seeds if groups else [])]) + "\n"
    statuses = ("finished", "failed", "interrupted", "broken", "stopped", "killed", "running")
    statuses += ("refused",)  # a sweep's job refused before it had a directory (ner/run/sweep.py)
    counts = {s: sum(r["status"] == s for r in rows) for s in statuses}
    rare = ("interrupted", "broken", "stopped", "killed", "refused")  # named only when some are
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s not in rare)
    lines = [f"# Runs under {root}", "", f"{len(rows)} jobs: {summary}. Sorted by best {monitor}."]
    lines += ["", main_table]
    problems = [r for r in rows if r["error"]]
    if problems and not everything:  # --all has the error column instead
        lines += ["", "## Problems", "", _render(fmt, ["job", "status", "error"], problems, {})]
    if groups:
        lines += ["", "## Seeds", "", "Jobs that differ only in their seed; mean and sample std"]
        lines += ["over the finished ones (n).", "", _seed_table(fmt, groups, everything)]
    return "\n".join(lines) + "\n"

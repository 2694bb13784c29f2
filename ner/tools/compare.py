"""`ner-report --compare`: two runs, or two groups of runs, scored on the same sentences from their
saved predictions (ner/report/predictions.py), with the statistics of ner/report/paired.py.

    ner-report --compare outputs/lr1e-3 outputs/lr3e-3            # two runs
    ner-report --compare runs/a1,runs/a2,runs/a3 runs/b1,runs/b2   # two groups (seeds)
    ner-report --compare multirun/demo_lr --by optim.lr            # a sweep's two values of a key

A side is a run directory or a comma-separated list of them (a group). With `--by KEY` the one
directory is a sweep, and its finished jobs are grouped by the value their overrides give KEY:
two values, or the two `--values` chosen. One table row per split and evaluation set the runs
saved (validation; test when they were tested): each side's F1 (a group's mean ± std over its
runs), the difference A - B, its 95% interval and p. Two single runs: a paired bootstrap over
sentences and an approximate randomisation test; groups: a two-level bootstrap (runs and
sentences) and a permutation test over the runs.

Refused in one line, each with its reason: a run named twice (in a side or in both; paths are
resolved) or two jobs of one setting under `--by` (one replicate counted twice); a sweep or runs
directory given as a run; a run not finished (running, interrupted, failed, stopped, killed:
ner/run/status.py), whose predictions may be an earlier attempt's, or a file of another epoch
than the finished run's best; a run without saved predictions (made before runs kept them);
runs evaluated on other sets, predictions on other sentences (their fingerprints differ), or
other label sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ner.atomic import read_json
from ner.errors import UserError
from ner.report import paired
from ner.report import predictions as saved
from ner.report.tables import table
from ner.run import layout
from ner.run.status import is_held, status_of
from ner.run.sweep import job_order, repeats

SPLIT_ORDER = {"validation": 0, "test": 1}


def side(arg: str) -> list[Path]:
    """The run directories of one side of `--compare`: one, or a comma-separated list."""
    runs = [Path(x) for x in arg.split(",") if x]
    for run in runs:
        if not run.is_dir():
            raise UserError(f"{run}: no such run directory")
    if not runs:
        raise UserError(f"--compare {arg!r}: no run directory")
    return runs


def by_key(jobs: Sequence[tuple[Path, dict]], key: str, values: Sequence[str] | None) -> list:
    """The two groups of a sweep's finished jobs ((job, overrides) pairs) by their value of `key`:
    [(value, [jobs]), (value, [jobs])], the values as `values` names them or the two there are.
    Refused when two of them ran the same settings: one replicate would count twice."""
    found: dict[str, list[Path]] = {}
    settings = {}
    for job, overrides in jobs:
        if key in overrides and (job / "result.json").is_file():
            found.setdefault(overrides[key], []).append(job)
            settings[job] = overrides
    if not found:
        raise UserError(f"--by {key}: no finished job of the sweep overrides {key}")
    if values is None:
        if len(found) != 2:
            raise UserError(
                f"--by {key}: the finished jobs have {len(found)} values ({', '.join(found)}); "
                "choose two with --values V1 V2"
            )
        values = list(found)
    missing = [v for v in values if v not in found]
    if missing:
        raise UserError(f"--by {key}: no finished job has {key}={missing[0]} ({', '.join(found)})")
    chosen = [(v, found[v]) for v in values]
    repeated = repeats([(job, settings[job]) for _, group in chosen for job in group])
    if repeated:
        job, first = min(repeated.items())
        once = [",".join(str(j) for j in group if j not in repeated) for _, group in chosen]
        chosen_settings = [settings[j] for _, group in chosen for j in group]
        varied = [k for k in settings[job] if len({str(o.get(k)) for o in chosen_settings}) > 1]
        same = " ".join(f"{k}={settings[job][k]}" for k in varied or settings[job]) or "none"
        raise UserError(
            f"--by {key}: jobs {first} and {job} ran the same settings ({same}): one replicate "
            "would count as two (a sweep launched again into its directory numbers its jobs "
            f"anew); compare each setting once: `ner-report --compare {once[0]} {once[1]}`"
        )
    return chosen


def distinct(groups: Sequence[Sequence[Path]]) -> None:
    """Refuse a run named twice, in one side or in both (two spellings of one directory are one
    run): each run is one replicate, counted once."""
    seen: dict[Path, tuple[str, Path]] = {}
    for side_name, group in zip("AB", groups, strict=True):
        for run in group:
            real = run.resolve()
            if real in seen:
                where, named = seen[real]
                spelled = "" if named == run else f" (as {named} and {run})"
                if where == side_name:
                    raise UserError(
                        f"{run}: named twice in {side_name}{spelled}: a run is one replicate; "
                        "name each run once"
                    )
                raise UserError(
                    f"{run}: in both A and B{spelled}: a run is compared with other runs, not "
                    "with itself; give each side its own runs"
                )
            seen[real] = (side_name, run)


def check_finished(run: Path, files: dict) -> None:
    """Refuse, with the reason, a run whose saved predictions cannot be what its best checkpoint
    predicts: a sweep or runs directory given as a run, a run not finished (running,
    interrupted, failed, stopped, killed: a resume rewrites best.pt before predictions/), or
    a file of another epoch than the finished run's best (result.json)."""
    jobs = _jobs_under(run)
    if jobs:
        example = f"{','.join(jobs[:2])} {','.join(jobs[2:4]) or 'OTHER'}"
        raise UserError(
            f"{run}: a sweep or runs directory, not a run: compare its jobs by a key with "
            f"`ner-report --compare {run} --by KEY`, or name each side's runs: "
            f"`ner-report --compare {example}`"
        )
    result = read_json(run / "result.json")
    status, why = status_of(run)
    if status == "finished":
        best = result.get("best_epoch") if isinstance(result, dict) else None
        for (split, set_name), p in files.items():
            if best is not None and p.epoch is not None and float(p.epoch) != float(best):
                test = "" if split == "validation" else " --split test"
                raise UserError(
                    f"{run}: {saved.DIRECTORY}/{saved.file_name(split, set_name)} holds the "
                    f"predictions of epoch {p.epoch:g}, but its best model is epoch {best:g} "
                    f"(result.json): `ner-evaluate {run} --save-predictions{test}` writes them "
                    "again from its best checkpoint"
                )
        return
    if status == "running" and is_held(run):
        raise UserError(
            f"{run}: still running (a live process holds {run}/.lock): its predictions are "
            "its best model's once it has finished; compare it then"
        )
    if status == "running" and not files:
        raise _missing(run)  # no record of how it ended, and nothing saved: an older run
    attempts = layout.attempts(run)
    launch = attempts[-1] / "launch.json" if attempts else None
    again = f' (the "command" of {launch})' if launch and launch.is_file() else ""
    state = f"{status}: {why}" if why else "no result.json"
    raise UserError(
        f"{run}: not finished ({state}); what its saved predictions hold may not be what its "
        f"best checkpoint predicts: run its command again{again} to finish it (it resumes), "
        "then compare"
    )


def _jobs_under(directory: Path) -> list[str]:
    """The job directories just under `directory` when it is a sweep or runs directory rather
    than a run (it holds none of a run's files), in numeric order; empty for a run."""
    own = (".hydra", "attempts", "predictions", "checkpoints", "result.json", "error.json")
    if any((directory / name).exists() for name in own):
        return []
    children = [c for c in directory.iterdir() if c.is_dir() and not c.name.startswith(".")]
    runs = [c for c in children if any((c / name).exists() for name in own)]
    runs.sort(key=job_order)
    if runs or (directory / "multirun.yaml").is_file():
        return [str(c) for c in runs] or [f"{directory}/<job>"]
    return []


def _missing(run: Path, key: tuple[str, str] | None = None) -> UserError:
    split = key[0] if key else "validation"
    test = "" if split == "validation" else " --split test"
    how = f"ner-evaluate {run} --save-predictions{test}"
    if key is None:
        return UserError(
            f"{run}: no saved predictions (a run made before runs kept them): `{how}` writes its "
            f"validation sets' from its best checkpoint, `{how} --split test` its test sets'"
        )
    name = saved.file_name(*key)
    return UserError(f"{run}: no predictions file {saved.DIRECTORY}/{name}; `{how}` writes it")


def load(groups: Sequence[Sequence[Path]]) -> list[tuple[tuple[str, str], list[list]]]:
    """Every run's predictions per (split, set): [(key, [[group A's], [group B's]])], checked
    to be on the same sentences with the same labels, in split then set order."""
    runs = [(run, saved.read_run(run)) for group in groups for run in group]
    for run, files in runs:
        check_finished(run, files)
        if not files:
            raise _missing(run)
    keys = sorted({k for _, files in runs for k in files}, key=lambda k: (SPLIT_ORDER[k[0]], k[1]))
    first_run, first = runs[0]
    for run, files in runs:
        for key in keys:
            if key not in files:
                _other_sets(runs, run, files, key)
                raise _missing(run, key)
            a, b = first[key], files[key]
            if a.labels != b.labels:
                raise UserError(
                    f"{first_run} and {run}: other label sets ({', '.join(a.labels)} against "
                    f"{', '.join(b.labels)}): their predictions cannot be compared"
                )
            if a.fingerprint != b.fingerprint:
                raise UserError(
                    f"{first_run} and {run}: {key[0]} ({key[1]}) holds other sentences "
                    f"(fingerprints {a.fingerprint[:12]} and {b.fingerprint[:12]}): runs are "
                    "compared on the same sentences only"
                )
    per_group, at = [], 0
    for group in groups:
        per_group.append([files for _, files in runs[at : at + len(group)]])
        at += len(group)
    return [(key, [[files[key] for files in g] for g in per_group]) for key in keys]


def _other_sets(runs, run: Path, files: dict, key: tuple[str, str]) -> None:
    """Refuse a run that lacks `key`'s file because it was evaluated on other sets (other data,
    other set names): no ner-evaluate of it writes predictions on a set it does not have."""
    mine = {name for _, name in files}
    if key[1] in mine:
        return  # the set is the run's: only this split's file is missing
    other = next(r for r, f in runs if key in f)
    theirs = sorted({name for r, f in runs if r == other for _, name in f})
    raise UserError(
        f"{run} and {other} were evaluated on other sets ({', '.join(sorted(mine))} against "
        f"{', '.join(theirs)}): runs are compared on the same sentences only, so compare "
        "runs trained and evaluated on the same data"
    )


def counts(p: saved.Predictions):
    return paired.micro_counts(p.tags(p.gold), p.tags(p.pred))


def compare(
    groups: Sequence[Sequence[Path]],
    names: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    fmt: str = "markdown",
) -> tuple[str, list[dict]]:
    """The report of two sides (`groups` of runs, called `names`), and its results per row."""
    distinct(groups)
    single = all(len(g) == 1 for g in groups)
    rows, results = [], []
    for (split, set_name), (a, b) in load(groups):
        ca, cb = [counts(p) for p in a], [counts(p) for p in b]
        if single:
            r = paired.compare_runs(ca[0], cb[0], resamples, seed)
            f1 = [f"{r['f1_a']:.4f}", f"{r['f1_b']:.4f}"]
        else:
            r = paired.compare_groups(ca, cb, resamples, seed)
            f1 = [_mean(r["f1_a"], r["std_a"], len(a)), _mean(r["f1_b"], r["std_b"], len(b))]
        lo, hi = r["interval"]
        n = len(a[0].ids)
        rows.append(
            [
                split,
                set_name,
                str(n),
                *f1,
                f"{r['difference']:+.4f}",
                f"{lo:+.4f} to {hi:+.4f}",
                f"{r['p']:.4f}",
            ]
        )
        results.append({"split": split, "set": set_name, "sentences": n, **r})
    header = ["split", "set", "sentences", "F1 A", "F1 B", "A - B", "95% CI", "p"]
    lines = [f"{label}: {name}" for label, name in zip("AB", names, strict=True)]
    lines += ["", table(fmt, header, rows), ""]
    if single:
        lines.append(
            f"95% CI: paired bootstrap over sentences ({resamples} resamples, seed {seed}); "
            f"p: approximate randomisation, each sentence's predictions swapped between the runs "
            f"({resamples} rounds; p >= {1 / (1 + resamples):.4f})"
        )
    else:
        r = results[0]
        splits = f"all {r['splits']} splits" if r["exact"] else f"{r['splits']} drawn splits"
        lines.append(
            f"F1: mean ± std over a group's runs; 95% CI: two-level bootstrap (each group's runs "
            f"and the sentences resampled, {resamples} resamples, seed {seed}); p: permutation "
            f"of the runs between the groups ({splits}; the smallest p they allow: "
            f"{r['min_p']:.4f})"
        )
    return "\n".join(lines) + "\n", results


def _mean(mean: float, std: float | None, n: int) -> str:
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f} ({n})"

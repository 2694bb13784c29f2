"""Saved predictions and ner-report --compare: the paired tests on hand-made prediction files,
seed groups, the refusals, and a finished tiny run's files against ner-evaluate's."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ner.data.sentences import Sentence, fingerprint
from ner.errors import UserError
from ner.report import paired
from ner.report import predictions as saved
from ner.report.bootstrap import PERCENTILES
from ner.tools.compare import compare
from ner.tools.report import main as report_main

# the session's finished run (conftest.py run_dir): built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("run_dir")

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
GOLD = ["B-PER", "I-PER", "O", "B-LOC", "O"]


def sentences(n: int, labels=GOLD) -> list[Sentence]:
    return [Sentence([f"w{i}", "b", "c", "d", "e"], list(labels), f"s {i}") for i in range(n)]


def misses(n: int, wrong: set[int]) -> list[list[str]]:
    """The gold tags, but the location missed in the sentences `wrong`."""
    return [[*GOLD[:3], "O", "O"] if i in wrong else list(GOLD) for i in range(n)]


def make_run(
    root: Path,
    name: str,
    pred,
    n: int = 40,
    split_sets=(("validation", "demo"),),
    sents=None,
    labels=LABELS,
) -> Path:
    """A finished run (result.json: best epoch 2) with its best model's predictions."""
    run = root / name
    for split, set_name in split_sets:
        saved.write(run / "predictions", split, set_name, labels, sents or sentences(n), pred, 2.0)
    (run / "result.json").write_text('{"status": "finished", "best_epoch": 2.0}')
    return run


def counts(run: Path, key=("validation", "demo")) -> np.ndarray:
    p = saved.read_run(run)[key]
    return paired.micro_counts(p.tags(p.gold), p.tags(p.pred))


def test_the_format_reads_back_and_is_the_same_bytes_for_the_same_predictions(tmp_path):
    a = make_run(tmp_path, "a", misses(40, {3}))
    b = make_run(tmp_path, "b", misses(40, {3}))
    [file] = (a / "predictions").iterdir()
    assert file.name == "validation.demo.json.gz"
    assert file.read_bytes() == (b / "predictions" / file.name).read_bytes()  # gzip mtime 0
    p = saved.read(file)
    assert (p.split, p.set, p.epoch, p.labels) == ("validation", "demo", 2.0, tuple(LABELS))
    assert p.ids == list(range(40)) and p.tags(p.gold) == [GOLD] * 40
    assert p.tags(p.pred) == misses(40, {3})
    assert p.fingerprint == fingerprint(sentences(40))
    record = json.loads(gzip.decompress(file.read_bytes()))
    record["pred"] = record["pred"][:-1]  # a torn or edited file is refused, named
    file.write_bytes(gzip.compress(json.dumps(record).encode()))
    with pytest.raises(UserError, match=f"predictions file {file}: cannot be read"):
        saved.read(file)


def test_identical_runs_differ_by_0_with_p_1(tmp_path):
    a = counts(make_run(tmp_path, "a", misses(40, {1, 5})))
    r = paired.compare_runs(a, a.copy(), resamples=200)
    assert (r["difference"], r["interval"], r["p"]) == (0.0, [0.0, 0.0], 1.0)


def test_a_strictly_better_run_has_a_small_p_and_an_interval_above_0(tmp_path):
    a = counts(make_run(tmp_path, "a", misses(40, set())))
    b = counts(make_run(tmp_path, "b", misses(40, set(range(0, 40, 3)))))  # 14 locations missed
    r = paired.compare_runs(a, b, resamples=500, seed=3)
    assert r["f1_a"] == 1.0 and r["difference"] == pytest.approx(1 - 2 * 66 / (80 + 66))
    assert r["p"] == 1 / 501  # no swap of the 2^14 gives a difference as large
    assert 0 < r["interval"][0] < r["difference"] < r["interval"][1]
    swapped = paired.compare_runs(b, a, resamples=500, seed=3)
    assert swapped["difference"] == -r["difference"] and swapped["p"] == r["p"]


def test_the_interval_and_p_equal_a_direct_computation_with_seqeval(tmp_path):
    from seqeval.metrics import f1_score

    rng = np.random.default_rng(7)
    n, gold = 30, [GOLD] * 30
    pa = misses(n, set(rng.choice(n, 6, replace=False).tolist()))
    pb = misses(n, set(rng.choice(n, 9, replace=False).tolist()))
    pb[4] = ["B-LOC", "I-LOC", "O", "B-LOC", "O"]  # a wrong type, and a spurious entity
    a, b = paired.micro_counts(gold, pa), paired.micro_counts(gold, pb)
    r = paired.compare_runs(a, b, resamples=60, seed=11)
    draws = np.random.default_rng(11).integers(0, n, size=(60, n))  # bootstrap.py's stream
    diffs = [
        f1_score([gold[i] for i in row], [pa[i] for i in row])
        - f1_score([gold[i] for i in row], [pb[i] for i in row])
        for row in draws
    ]
    assert r["interval"] == pytest.approx(np.percentile(diffs, PERCENTILES).tolist(), abs=1e-12)
    observed = f1_score(gold, pa) - f1_score(gold, pb)
    assert r["difference"] == pytest.approx(observed, abs=1e-12)
    differ = [i for i in range(n) if pa[i] != pb[i]]
    rounds, at_least = np.random.default_rng(11), 0
    for _ in range(60):  # each differing sentence's two predictions swapped with probability 1/2
        swap = dict(zip(differ, rounds.random(len(differ)) < 0.5, strict=True))
        sa = [pb[i] if swap.get(i) else pa[i] for i in range(n)]
        sb = [pa[i] if swap.get(i) else pb[i] for i in range(n)]
        at_least += abs(f1_score(gold, sa) - f1_score(gold, sb)) >= abs(observed) - 1e-12
    assert r["p"] == (1 + at_least) / 61


def test_seed_groups_resample_and_permute_the_runs(tmp_path):
    n = 40
    good = [counts(make_run(tmp_path, f"g{k}", misses(n, set(range(k, n, 10))))) for k in range(3)]
    bad = [counts(make_run(tmp_path, f"b{k}", misses(n, set(range(k, n, 3))))) for k in range(3)]
    r = paired.compare_groups(good, bad, resamples=300)
    f1 = [paired.f1_of(c) for c in good + bad]
    assert r["f1_a"] == pytest.approx(np.mean(f1[:3])) and r["f1_b"] == pytest.approx(
        np.mean(f1[3:])
    )
    assert r["std_a"] == pytest.approx(np.std(f1[:3], ddof=1))
    # Every run of A above every run of B: only the observed split and its mirror are as far
    # apart, so p is the smallest 3 + 3 seeds allow, 2 of C(6, 3) = 20.
    assert (r["p"], r["min_p"], r["splits"], r["exact"]) == (0.1, 0.1, 20, True)
    assert 0 < r["interval"][0] < r["difference"] < r["interval"][1]
    # The same runs on both sides: difference 0, p 1; the seeds' spread still gives an interval.
    same = paired.compare_groups(good, good[::-1], resamples=300)
    assert same["difference"] == pytest.approx(0, abs=1e-15) and same["p"] == 1.0
    assert same["interval"][0] < 0 < same["interval"][1]
    # One group of one run against three: 4 splits, none mirrored.
    one = paired.compare_groups(good[:1], bad, resamples=50)
    assert (one["splits"], one["min_p"], one["std_a"]) == (4, 0.25, None)


def test_compare_refuses_other_sentences_labels_and_missing_files_in_one_line(tmp_path, capsys):
    a = make_run(
        tmp_path, "a", misses(40, {1}), split_sets=[("validation", "demo"), ("test", "demo")]
    )
    b = make_run(tmp_path, "b", misses(40, {2}))
    other = sentences(40)
    other[7] = Sentence(["x", "b", "c", "d", "e"], list(GOLD), "elsewhere")  # one other word
    c = make_run(tmp_path, "c", misses(40, {2}), sents=other)
    d = make_run(tmp_path, "d", misses(40, {2}), labels=[*LABELS, "B-ORG", "I-ORG"])
    old = tmp_path / "old"
    old.mkdir()
    cases = [
        (
            a,
            b,
            f"{b}: no predictions file predictions/test.demo.json.gz; `ner-evaluate {b} "
            "--save-predictions --split test` writes it",
        ),
        (b, c, f"{b} and {c}: validation (demo) holds other sentences (fingerprints"),
        (b, d, f"{b} and {d}: other label sets"),
        (
            b,
            old,
            f"{old}: no saved predictions (a run made before runs kept them): "
            f"`ner-evaluate {old} --save-predictions` writes",
        ),
        (b, tmp_path / "nowhere", "nowhere: no such run directory"),
    ]
    for x, y, message in cases:
        assert report_main(["--compare", str(x), str(y)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_report_compare_prints_a_row_per_split_and_set(tmp_path, capsys):
    both = [("validation", "demo"), ("test", "demo")]
    a = make_run(tmp_path, "a", misses(40, set()), split_sets=both)
    b = make_run(tmp_path, "b", misses(40, set(range(0, 40, 3))), split_sets=both)
    assert report_main(["--compare", str(a), str(b), "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    assert f"A: {a}\nB: {b}" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "demo" in line]
    assert [r.split("|")[1].strip() for r in rows] == ["validation", "test"]
    assert "| 1.0000 | 0.9041 | +0.0959 |" in rows[0] and rows[0].rstrip().endswith("| 0.0099 |")
    assert "p: approximate randomisation" in out and "(100 rounds; p >= 0.0099)" in out
    text, results = compare([[a], [b]], ["a", "b"], resamples=100)
    assert results[0]["p"] == 1 / 101 and text.startswith("A: a\nB: b\n")


def test_report_compare_groups_a_sweep_by_a_key(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for k, (lr, seed) in enumerate([(x, s) for x in ("1e-3", "3e-3") for s in (1, 2)]):
        wrong = set(range(seed, 40, 4 if lr == "1e-3" else 10))
        job = make_run(sweep, str(k), misses(40, wrong))
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(f"- optim.lr={lr}\n- seed={seed}\n")
        (job / "result.json").write_text('{"status": "finished"}')
    assert report_main(["--compare", str(sweep), "--by", "optim.lr", "--resamples", "50"]) == 0
    out = capsys.readouterr().out
    assert "A: optim.lr=1e-3: 0, 1\nB: optim.lr=3e-3: 2, 3" in out
    assert " ± " in out and "p: permutation of the runs between the groups (all 6 splits" in out
    assert report_main(["--compare", str(sweep), "--by", "seed", "--values", "2", "1"]) == 0
    assert "A: seed=2: 1, 3\nB: seed=1: 0, 2" in capsys.readouterr().out
    assert report_main(["--compare", str(sweep), "--by", "optim.wd"]) == 2
    assert (
        "--by optim.wd: no finished job of the sweep overrides optim.wd" in capsys.readouterr().err
    )


@pytest.mark.slow
def test_a_runs_files_are_its_best_model_and_an_old_run_is_made_comparable(
    run_dir, tmp_path, capsys
):
    from ner.tools.evaluate import main as evaluate_main

    files = sorted(p.name for p in (run_dir / "predictions").iterdir())
    result = json.loads((run_dir / "result.json").read_text())
    assert files == ["test.demo.json.gz", "validation.demo.json.gz"]
    # Scored from the files alone: the log's best validation F1 and its test F1.
    assert paired.f1_of(counts(run_dir)) == pytest.approx(result["best"], abs=1e-12)
    test_f1 = paired.f1_of(counts(run_dir, ("test", "demo")))
    assert test_f1 == pytest.approx(result["test"]["test_f1"], abs=1e-12)
    for split in ("validation", "test"):  # what ner-evaluate computes from best.pt
        argv = [str(run_dir), "--split", split, "--output", str(tmp_path / f"{split}.json")]
        assert evaluate_main([*argv, "--save-predictions", str(tmp_path / "again")]) == 0
        name = f"{split}.demo.json.gz"
        assert (tmp_path / "again" / name).read_bytes() == (
            run_dir / "predictions" / name
        ).read_bytes()
        assert saved.read(run_dir / "predictions" / name).epoch == result["best_epoch"]
    # A run made before runs kept predictions: compare says how to make them; they are made.
    old = tmp_path / "old"
    shutil.copytree(run_dir, old, ignore=shutil.ignore_patterns("tensorboard", "step-*.pt"))
    shutil.rmtree(old / "predictions")
    capsys.readouterr()
    assert report_main(["--compare", str(old), str(run_dir)]) == 2
    assert f"`ner-evaluate {old} --save-predictions` writes" in capsys.readouterr().err
    for split in ("validation", "test"):
        assert evaluate_main([str(old), "--split", split, "--save-predictions"]) == 0
    capsys.readouterr()
    assert report_main(["--compare", str(old), str(run_dir), "--resamples", "50"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "| demo " in line]
    assert len(rows) == 2 and all("| +0.0000 | +0.0000 to +0.0000 | 1.0000 |" in r for r in rows)
    assert evaluate_main([str(old), "--checkpoint", "last", "--save-predictions"]) == 2
    assert "is not a run's best model (checkpoint last)" in capsys.readouterr().err


def test_a_run_counts_once_named_twice_in_a_side_or_in_both_it_is_refused(tmp_path, capsys):
    a = make_run(tmp_path, "a", misses(40, set()))
    b = make_run(tmp_path, "b", misses(40, set(range(0, 40, 3))))
    c = make_run(tmp_path, "c", misses(40, set(range(1, 40, 3))))
    again = tmp_path / "x" / ".." / "a"  # another spelling of the same directory
    (tmp_path / "x").mkdir()
    cases = [
        (
            [f"{a},{a},{a},{a}", f"{b},{b},{b},{b}"],
            f"{a}: named twice in A: a run is one replicate",
        ),
        ([f"{a},{again}", f"{b},{c}"], f"{again}: named twice in A (as {a} and {again})"),
        ([f"{a},{b}", f"{b},{c}"], f"{b}: in both A and B: a run is compared with other runs"),
        ([str(a), str(again)], f"{again}: in both A and B (as {a} and {again})"),
    ]
    for sides, message in cases:
        assert report_main(["--compare", *sides, "--resamples", "20"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    # Two runs against two, each once, are compared.
    assert report_main(["--compare", f"{a},{c}", str(b), "--resamples", "20"]) == 0


def test_by_refuses_two_jobs_of_one_setting_and_says_which_runs_to_compare(tmp_path, capsys):
    """A sweep launched again into its directory (Hydra numbers the jobs anew) ran seed 2 of
    optim.lr=3e-3 twice, in jobs 3 and 4: --by would count one replicate as two."""
    sweep = tmp_path / "sweep"
    settings = [("1e-3", 1), ("1e-3", 2), ("3e-3", 1), ("3e-3", 2), ("3e-3", 2)]
    for k, (lr, seed) in enumerate(settings):
        job = make_run(sweep, str(k), misses(40, set(range(seed + k, 40, 5))))
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(f"- optim.lr={lr}\n- seed={seed}\n")
    assert report_main(["--compare", str(sweep), "--by", "optim.lr", "--resamples", "20"]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and (f"jobs {sweep / '3'} and {sweep / '4'} ran the same settings (optim.lr=3e-3 seed=2)")
        in err
    )
    once = f"{sweep / '0'},{sweep / '1'} {sweep / '2'},{sweep / '3'}"
    assert f"compare each setting once: `ner-report --compare {once}`" in err
    assert report_main(["--compare", *once.split(), "--resamples", "20"]) == 0  # the advice works


def test_compare_gives_the_reason_for_other_sets_a_running_run_and_a_sweep(tmp_path, capsys):
    from ner.run.lock import Lock

    a = make_run(tmp_path, "a", misses(40, {1}))
    he = make_run(tmp_path, "he", misses(40, {1}), split_sets=[("validation", "he")])
    running = tmp_path / "running"  # its first attempt, still training: nothing saved yet
    running.mkdir()
    extending = make_run(tmp_path, "extending", misses(40, {2}))  # an extension in progress
    (extending / "result.json").unlink()  # moved to attempts/1/end.json when it was accepted
    sweep = tmp_path / "sweep"
    for k in range(4):
        make_run(sweep, str(k), misses(40, {k}))
    locks = [Lock(running).acquire(), Lock(extending).acquire()]
    cases = [
        (a, he, f"{a} and {he} were evaluated on other sets (demo against he)"),
        (he, a, f"{he} and {a} were evaluated on other sets (he against demo)"),
        (a, running, f"{running}: still running (a live process holds {running}/.lock)"),
        (extending, a, f"{extending}: still running"),
        (
            sweep,
            a,
            f"{sweep}: a sweep or runs directory, not a run: compare its jobs by a key with "
            f"`ner-report --compare {sweep} --by KEY`, or name each side's runs: "
            f"`ner-report --compare {sweep / '0'},{sweep / '1'} {sweep / '2'},{sweep / '3'}`",
        ),
    ]
    try:
        for x, y, message in cases:
            assert report_main(["--compare", str(x), str(y)]) == 2
            err = capsys.readouterr().err
            assert message in err and err.count("\n") == 1, err
    finally:
        for lock in locks:
            lock.release()
    # The sweep advice works.
    argv = ["--compare", f"{sweep / '0'},{sweep / '1'}", f"{sweep / '2'},{sweep / '3'}"]
    assert report_main([*argv, "--resamples", "20"]) == 0


def test_a_file_of_another_epoch_than_the_best_is_refused_and_ner_evaluate_named(tmp_path, capsys):
    a = make_run(
        tmp_path, "a", misses(40, {1}), split_sets=[("validation", "demo"), ("test", "demo")]
    )
    b = make_run(
        tmp_path, "b", misses(40, {2}), split_sets=[("validation", "demo"), ("test", "demo")]
    )
    (b / "result.json").write_text('{"status": "finished", "best_epoch": 4.0}')
    assert report_main(["--compare", str(a), str(b)]) == 2
    assert capsys.readouterr().err == (
        f"error: {b}: predictions/test.demo.json.gz holds the predictions of epoch 2, but its "
        f"best model is epoch 4 (result.json): `ner-evaluate {b} --save-predictions --split "
        "test` writes them again from its best checkpoint\n"
    )


@pytest.mark.slow
def test_an_extension_stopped_early_is_stopped_and_compared_only_once_finished(
    run_dir, tmp_path, capsys
):
    """A finished run extended (trainer.epochs=4) and stopped in epoch 4 by
    trainer.stop_after_steps: best.pt is epoch 3's, predictions/ still the first attempt's
    epoch 2. ner-report says it stopped (not running); --compare refuses it, and once the same
    command finishes it, compares what its best model predicts."""
    from conftest import CLI_RUN, compose

    from ner.distributed import Env
    from ner.train import train

    run = tmp_path / "extended"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("tensorboard", "step-*.pt"))
    history = json.loads((run / "log_history.json").read_text())
    per_epoch = [e for e in history if "eval_f1" in e][-1]["step"] // 2
    stop = 3 * per_epoch + 1
    extend = [o for o in CLI_RUN if not o.startswith("trainer.epochs=")] + ["trainer.epochs=4"]
    assert train(compose([*extend, f"trainer.stop_after_steps={stop}"]), Env(), run) is None
    assert saved.read(run / "predictions" / "validation.demo.json.gz").epoch == 2.0  # stale

    assert report_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 jobs: 0 finished, 0 failed, 1 stopped, 0 running" in out
    assert f"stopped at step {stop} (trainer.stop_after_steps)" in out

    assert report_main(["--compare", str(run), str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(
            f"error: {run}: not finished (stopped: stopped at step {stop} (trainer.stop_after_steps)); "
        )
        and "run its command again" in err
        and err.count("\n") == 1
    )

    train(compose(extend), Env(), run)  # the same command, without the stop: it finishes
    result = json.loads((run / "result.json").read_text())
    best = saved.read(run / "predictions" / "validation.demo.json.gz")
    assert best.epoch == result["best_epoch"] > 2
    assert report_main(["--compare", str(run), str(run_dir), "--resamples", "20"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "| validation |" in line)
    assert f"| {result['best']:.4f} |" in row

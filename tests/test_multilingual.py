"""Several training languages and named evaluation sets: the mix of an epoch, per-set logs,
tables and charts, the same numbers on 1 and 2 processes and after a resume, label agreement."""

from __future__ import annotations

import json
import sys
from collections import Counter

import pytest
from conftest import QUICK, compose, eval_entries, run_cli, torchrun, train_in_process

from ner.batching import epoch_plan, epoch_selection
from ner.data.corpus import load_corpus
from ner.errors import DataError, UserError

# its module-scoped fixture built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("multilingual")

TWO = [*QUICK, "data.config=[he,ar]"]


def counts_by_source(selection: list[int], sizes: list[int]) -> list[int]:
    bounds = [sum(sizes[:k]) for k in range(len(sizes) + 1)]
    source = Counter(next(k for k in range(len(sizes)) if i < bounds[k + 1]) for i in selection)
    return [source[k] for k in range(len(sizes))]


def test_alpha_one_keeps_the_union_and_smaller_alpha_upsamples_small_sources():
    sizes = [2000, 500, 100]
    assert epoch_selection(sizes, 1.0, seed=42, epoch=0) == list(range(2600))
    for alpha in (0.7, 0.3):
        selected = epoch_selection(sizes, alpha, seed=42, epoch=3)
        counts = counts_by_source(selected, sizes)
        shares = [(n / 2600) ** alpha for n in sizes]
        expected = [2600 * q / sum(shares) for q in shares]
        assert sum(counts) == 2600  # an epoch as long as the union
        assert all(abs(c - e) < 1 for c, e in zip(counts, expected, strict=True)), counts
        # Counted over an epoch plan: every selected example is in exactly one step.
        plan = epoch_plan([1] * len(selected), 8, 2, 1, 42, 3, False)
        planned = [selected[i] for step in plan for micro in step for rank in micro for i in rank]
        assert counts_by_source(planned, sizes) == counts
    small = Counter(i for i in epoch_selection(sizes, 0.3, 42, 3) if i >= 2500)
    assert set(small) == set(range(2500, 2600))  # up-sampled: every example, several times
    assert epoch_selection(sizes, 0.3, 42, 3) == epoch_selection(sizes, 0.3, 42, 3)
    assert epoch_selection(sizes, 0.3, 42, 3) != epoch_selection(sizes, 0.3, 42, 4)


def test_two_demo_languages_make_two_sources_and_two_sets():
    corpus = load_corpus(compose(TWO).data)
    assert [(name, len(s)) for name, s in corpus.train] == [("he", 240), ("ar", 240)]
    assert [(s.name, sorted(s.sentences)) for s in corpus.eval_sets] == [
        ("he", ["test", "validation"]),
        ("ar", ["test", "validation"]),
    ]
    assert corpus.eval_sets[1].sentences["validation"][0].where.startswith("demo (ar)")


def write_dataset(root, config: str, names: list[str]) -> None:
    """A local dataset in the hub's layout whose ner_tags ClassLabel has `names`."""
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    features = Features(
        {"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=names))}
    )
    rows = {"tokens": [["דני", "כהן"]], "ner_tags": [[1, 2]]}
    for split in ("train", "validation"):
        (root / config).mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(rows, features=features).to_parquet(root / config / f"{split}-0.parquet")


def test_sets_with_other_labels_are_refused_naming_the_set_and_the_labels(tmp_path):
    write_dataset(tmp_path, "a", ["O", "B-PER", "I-PER"])
    write_dataset(tmp_path, "b", ["O", "B-LOC", "I-LOC"])
    (tmp_path / "README.md").write_text(
        "---\nconfigs:\n"
        + "".join(
            f"- config_name: {c}\n  data_files:\n"
            f"  - split: train\n    path: {c}/train-*.parquet\n"
            f"  - split: validation\n    path: {c}/validation-*.parquet\n"
            for c in ("a", "b")
        )
        + "---\n"
    )
    cfg = compose([*QUICK, f"data.name={tmp_path}", "data.config=a", "data.eval_configs=[a,b]"])
    with pytest.raises(DataError) as refused:
        load_corpus(cfg.data)
    assert str(refused.value) == (
        f"{tmp_path} (b): labels ['O', 'B-LOC', 'I-LOC'] differ from {tmp_path} (a)'s "
        "['O', 'B-PER', 'I-PER']; every source and evaluation set needs the same labels"
    )


def test_a_set_whose_tags_the_training_data_lacks_is_refused_in_one_line(tmp_path):
    train, news = tmp_path / "train.conll", tmp_path / "news.conll"
    train.write_text("דני\tB-PER\nגר\tO\n", encoding="utf-8")
    news.write_text("באנק\tB-ORG\n", encoding="utf-8")
    cfg = compose(
        [
            *QUICK,
            "data.name=null",
            f"data.train_file={train}",
            f"data.validation_file={train}",
            f"+data.extra_eval_files.news={news}",
        ]
    )
    with pytest.raises(DataError, match=rf"split validation \({news}\): tags \['B-ORG'\] never"):
        load_corpus(cfg.data)


def test_a_run_of_several_languages_or_files_is_named_after_each():
    from ner.naming import run_name

    assert run_name(compose(["experiment=demo_multilingual"])) == "tiny-xlmr-finetuned-demo-he-ar"
    two_files = ["data.name=null", "data.train_file=[x/a.conll,b.jsonl]"]
    assert run_name(compose(two_files)) == "tiny-xlmr-finetuned-a-b"
    assert run_name(compose(["data.name=null", "data.train_file=x/a.conll"])) == (
        "tiny-xlmr-finetuned-a"
    )


def test_monitor_may_name_a_set_or_the_mean():
    from ner.run.checks import check

    check(compose([*TWO, "trainer.monitor=eval_ar_f1"]))
    with pytest.raises(UserError, match="trainer.monitor=eval_fa_f1 is not a metric"):
        check(compose([*TWO, "trainer.monitor=eval_fa_f1"]))


@pytest.fixture(scope="module")
def two_language_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("two")
    best, history = train_in_process(run_dir, [*TWO, "trainer.monitor=eval_ar_f1"])
    return run_dir, best, history


@pytest.mark.slow
def test_a_two_language_run_logs_each_set_and_their_mean(two_language_run):
    run_dir, best, history = two_language_run
    evals = eval_entries(history)
    for e in evals:
        for metric in ("loss", "precision", "recall", "f1", "accuracy"):
            per_set = [e[f"eval_{s}_{metric}"] for s in ("he", "ar")]
            assert e[f"eval_{metric}"] == pytest.approx(sum(per_set) / 2)
    assert best == max(e["eval_ar_f1"] for e in evals)  # selection on one set's key
    test = [e for e in history if "test_f1" in e][-1]
    assert test["test_f1"] == pytest.approx((test["test_he_f1"] + test["test_ar_f1"]) / 2)


@pytest.mark.slow
def test_a_two_language_run_draws_per_set_charts_and_card_tables(two_language_run):
    from card_table import parse_results_table
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2

    run_dir, _, history = two_language_run
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    for tag in ("eval/he/f1", "eval/ar/f1", "eval/f1", "eval/ar/loss"):
        assert [ev.step for ev in acc.Scalars(tag)] == [1, 2], tag
    [layout_tag] = acc.PluginTagToContent("custom_scalars")
    layout = layout_pb2.Layout.FromString(acc.Tensors(layout_tag)[0].tensor_proto.string_val[0])
    f1_chart = next(c for c in layout.category[0].chart if c.title == "f1")
    assert list(f1_chart.multiline.tag) == ["eval/he/f1", "eval/ar/f1", "eval/f1"]
    card = (run_dir / "README.md").read_text()
    assert "on its evaluation sets (he, ar), as the macro mean over them" in card
    best = max(eval_entries(history), key=lambda e: e["eval_ar_f1"])
    assert f"| ar   | {best['eval_ar_loss']:.4f} " in card
    assert f"| mean | {best['eval_loss']:.4f} " in card
    assert len(parse_results_table(card)) == 2  # the reference table: the means, per epoch
    assert (run_dir / "curves.png").stat().st_size > 0


@pytest.mark.slow
def test_ner_report_and_ner_evaluate_show_every_set(two_language_run, tmp_path):
    from ner.tools.report import build_rows, report

    run_dir, _, history = two_language_run
    [row] = build_rows(run_dir)
    best = max(eval_entries(history), key=lambda e: e["eval_ar_f1"])
    assert row["sets"] == {
        "he": pytest.approx(best["eval_he_f1"]),
        "ar": pytest.approx(best["eval_ar_f1"]),
    }
    assert "| he_f1" in report(run_dir, [row], "eval_f1", "markdown", everything=False)
    out = run_cli(
        [sys.executable, "-m", "ner.tools.evaluate", str(run_dir), "--output", "-"], tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    metrics = json.loads(out.stdout)
    assert set(metrics["sets"]) == {"he", "ar"}
    assert metrics["sets"]["ar"]["f1"] == pytest.approx(best["eval_ar_f1"], abs=1e-6)
    assert "| mean " in out.stderr  # one table: a row per set and the mean


@pytest.mark.slow
def test_one_and_two_processes_give_the_same_per_set_metrics(tmp_path):
    common = [*TWO, "model.dropout=0.0", "trainer.eval_test=false", "data.sampling_alpha=0.5"]
    out = torchrun(2, [*common, "trainer.batch_size=4", f"hydra.run.dir={tmp_path}/two"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    _, one = train_in_process(tmp_path / "one", [*common, "trainer.batch_size=8"])
    two = json.loads((tmp_path / "two" / "log_history.json").read_text())
    for a, b in zip(eval_entries(two), eval_entries(one), strict=True):
        for s in ("he", "ar"):
            for metric in ("loss", "precision", "recall", "f1", "accuracy"):
                key = f"eval_{s}_{metric}"
                assert a[key] == pytest.approx(b[key], abs=1e-4), key


@pytest.mark.slow
def test_resume_mid_epoch_of_a_two_language_run_equals_an_uninterrupted_one(tmp_path):
    common = [*TWO, "data.sampling_alpha=0.5", "trainer.save_every_steps=7", "trainer.epochs=3"]
    _, full = train_in_process(tmp_path / "full", common)
    train_in_process(tmp_path / "cut", [*common, "trainer.stop_after_steps=70"])
    _, resumed = train_in_process(tmp_path / "cut", common)

    def numbers(history):
        return [
            {k: v for k, v in e.items() if "runtime" not in k and "per_second" not in k}
            for e in history
        ]

    for x, y in zip(numbers(full), numbers(resumed), strict=True):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], float):
                assert x[k] == pytest.approx(y[k], abs=1e-6), k

"""Bad data stops the run before training with file, line and problem; long sentences lose nothing."""

from __future__ import annotations

import sys

import pytest
from conftest import QUICK, compose, run_cli

GOOD = "דני\tB-PER\nכהן\tI-PER\nגר\tO\nבחיפה\tB-LOC\n\nשלום\tO\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,content,extra,expected",
    [
        (
            "train.conll",
            GOOD + "\nבית\n",
            [],
            "train.conll (split train), line 8: expected 'token<TAB>tag', got 1 field",
        ),
        (
            "train.conll",
            GOOD.encode() + b"\n\xf9\xe3\tO\n",
            [],
            "train.conll (split train), line 8: byte 0xF9",
        ),
        (
            "train.conll",
            GOOD + "\nגר\tO\nבחיפה\tI-LOC\n",
            ["data.on_error=raise"],
            "train.conll (split train), line 8: token 2 of 2 ('בחיפה') has tag I-LOC but follows O",
        ),
        (
            "train.conll",
            GOOD + "\nגר\tO\nבחיפה\tB-LOC\tx\n",
            [],
            "train.conll (split train), line 9: 3 fields, expected 2 as on line 1",
        ),
        (
            "train.conll",
            GOOD + "\nבחיפה\tb-loc\n",
            [],
            "train.conll (split train), line 8: token 1 of 1 ('בחיפה') has tag 'b-loc': the prefix "
            "must be upper-case B- or I-; did you mean 'B-LOC'? tags are case-sensitive",
        ),
        (
            "train.jsonl",
            '{"tokens": ["a", "b"], "ner_tags": ["O"]}\n',
            [],
            "train.jsonl (split train), line 1: 2 tokens but 1 tags",
        ),
    ],
)
def test_a_faulty_file_stops_the_run_with_place_and_problem(
    tmp_path, capfd, name, content, extra, expected
):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    dev = tmp_path / "dev.conll"
    dev.write_text(GOOD, encoding="utf-8")
    args = ["data.name=null", f"data.train_file={path}", f"data.validation_file={dev}", *extra]
    if "byte 0xF9" in expected:  # one case through the command line, as a user meets it
        out = run_cli(
            [sys.executable, "-m", "ner.train", *args, f"hydra.run.dir={tmp_path}/run"],
            tmp_path,
            120,
        )
        returncode, stderr = out.returncode, out.stderr
    else:  # the others in this process: the same train() and the same one line (ner/run/cli.py)
        returncode, stderr = train_as_the_cli_does(tmp_path / "run", args, capfd)
    assert returncode == 2, stderr[-2000:]
    assert "Traceback" not in stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("error: ") and str(tmp_path) in line and expected in line
    assert not (tmp_path / "run/checkpoints").exists()


def train_as_the_cli_does(run_dir, overrides: list[str], capfd) -> tuple[int, str]:
    """`ner.train.train` on one process, a UserError ended as ner/run/cli.py ends it (its one
    line on stderr, exit status 2): (exit status, stderr)."""
    from ner.distributed import Env
    from ner.errors import UserError, exit_on_error
    from ner.train import train

    cfg = compose(overrides)
    capfd.readouterr()
    run_dir.mkdir(parents=True)
    try:
        train(cfg, Env(), run_dir)
        returncode = 0
    except UserError as e:
        returncode = exit_on_error(e)
    return returncode, capfd.readouterr().err


def test_missing_validation_split_is_named(tmp_path):
    from ner.data.corpus import load_corpus
    from ner.errors import DataError

    path = tmp_path / "train.conll"
    path.write_text(GOOD, encoding="utf-8")
    cfg = compose([*QUICK, "data.name=null", f"data.train_file={path}"])
    with pytest.raises(
        DataError,
        match=r"local files: no validation split \(splits found: train\); give data.validation_file=PATH",
    ):
        load_corpus(cfg.data)
    # A test file without a validation file is the same missing split, named the same way.
    test = ["data.name=null", f"data.train_file={path}", f"data.test_file={path}"]
    with pytest.raises(
        DataError,
        match=r"local files: no validation split \(splits found: train, test\); give data.validation_file=PATH",
    ):
        load_corpus(compose([*QUICK, *test]).data)


@pytest.mark.slow
def test_metrics_over_sentences_longer_than_the_window_count_every_gold_entity(tmp_path):
    """With windows of 16 sub-tokens most sentences are split; every word still gets one
    prediction and the metrics equal seqeval over the complete gold sequences."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    from ner.batching import Collator
    from ner.data.sentences import entity_counts
    from ner.distributed import Env
    from ner.evaluate import evaluate
    from ner.prepare import prepare

    cfg = compose([*QUICK, "model.max_length=16", "model.window_stride=3"])
    run = prepare(cfg, Env(), tmp_path, lambda line: None)
    stats = run.stats["validation"]
    assert stats.split_sentences > 30 and stats.windows > stats.sentences
    [only] = run.eval_sets
    gold = only.gold["validation"]
    result = evaluate(
        run.model, only.features["validation"], gold, run.labels, 5, Collator(1), Env()
    )
    pred = result["predictions"]
    assert [len(p) for p in pred] == [len(g) for g in gold]
    assert result["precision"] == pytest.approx(precision_score(gold, pred))
    assert result["recall"] == pytest.approx(recall_score(gold, pred))
    assert result["f1"] == pytest.approx(f1_score(gold, pred))
    support = sum(r["support"] for r in result["per_type"].values())
    assert support == sum(entity_counts(run.corpus.eval_sets[0].sentences["validation"]).values())


def test_a_lowercase_tag_in_the_validation_file_is_named_with_its_line(tmp_path):
    from ner.data.corpus import load_corpus
    from ner.errors import DataError

    train, dev = tmp_path / "train.conll", tmp_path / "dev.conll"
    train.write_text(GOOD, encoding="utf-8")
    dev.write_text(GOOD + "\nמשה\tb-per\n", encoding="utf-8")
    cfg = compose(
        [*QUICK, "data.name=null", f"data.train_file={train}", f"data.validation_file={dev}"]
    )
    with pytest.raises(DataError) as bad:
        load_corpus(cfg.data)
    assert str(bad.value) == (
        f"{dev} (split validation), line 8: token 1 of 1 ('משה') has tag 'b-per': the prefix "
        "must be upper-case B- or I-; did you mean 'B-PER'? tags are case-sensitive"
    )


def test_an_evaluation_tag_the_training_data_lacks_is_named_with_its_line(tmp_path, capfd):
    """Refused before, but without the place: which of 10,000 lines holds the tag?"""
    train = tmp_path / "train.conll"
    train.write_text(GOOD, encoding="utf-8")  # PER and LOC, no ORG
    dev = tmp_path / "dev.conll"
    dev.write_text("דני\tB-PER\n\nגר\tO\nבגוגל\tB-ORG\n", encoding="utf-8")
    args = ["data.name=null", f"data.train_file={train}", f"data.validation_file={dev}"]
    returncode, stderr = train_as_the_cli_does(tmp_path / "run", args, capfd)
    assert returncode == 2, stderr[-2000:]
    [line] = stderr.strip().splitlines()
    assert line == (
        f"error: split validation ({dev}): tags ['B-ORG'] never occur in split train, so the "
        f"model cannot learn them; the first: {dev} (split validation), line 3: token 2 of 2 "
        "('בגוגל') has tag 'B-ORG' (token on line 4); add examples to train or fix the tags"
    )

"""ner-evaluate: the same numbers as the run's own log, from a checkpoint or an export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CLI_RUN_EPOCHS as QUICK_EPOCHS
from conftest import run_cli, torchrun_cmd

from ner.tools.evaluate import main

# the session's finished run (conftest.py run_dir): built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("run_dir")

METRICS = ("loss", "precision", "recall", "f1", "accuracy")


def history(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "log_history.json").read_text())


def eval_entry(run_dir: Path, epoch: float | None = None) -> dict:
    """The eval entry of `epoch`, by default of the best epoch."""
    h = history(run_dir)
    epoch = epoch if epoch is not None else h[-1]["best_epoch"]
    return next(e for e in h if "eval_f1" in e and e["epoch"] == epoch)


def assert_same(metrics: dict, entry: dict, prefix: str) -> None:
    for key in METRICS:
        assert metrics[key] == pytest.approx(entry[f"{prefix}_{key}"], abs=1e-6), key
    theirs = entry[f"{prefix}_per_type"]
    assert metrics["per_type"].keys() == theirs.keys()
    for name, r in theirs.items():
        for key in ("precision", "recall", "f1"):
            assert metrics["per_type"][name][key] == pytest.approx(r[key], abs=1e-6)
        assert metrics["per_type"][name]["support"] == r["support"]


def write_jsonl(path: Path, sentences: list[dict]) -> Path:
    lines = [json.dumps(s, ensure_ascii=False) for s in sentences]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- fast: user errors -----------------------------------------------------------------------


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing: no such file or directory" in err

    assert main([str(tmp_path)]) == 2
    assert "neither a run directory" in capsys.readouterr().err

    (tmp_path / "checkpoints").mkdir()
    assert main([str(tmp_path), "--checkpoint", "last"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint last.pt (found: none" in err

    (tmp_path / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint")
    assert main([str(tmp_path)]) == 2
    assert "cannot be read" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--split", "dev"],
        ["run", "--data-config", "he"],
        ["run", "--data-file", "a.conll", "--data-name", "x"],
        ["run", "--batch-size", "0"],
    ],
)
def test_bad_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_an_output_or_predictions_path_that_is_a_directory_is_refused(tmp_path, capsys):
    for flag in ("--output", "--predictions"):
        with pytest.raises(SystemExit) as exc:
            main(["run", flag, str(tmp_path)])
        assert exc.value.code == 2
        assert f"error: {flag} {tmp_path} is a directory; give a file's path" in (
            capsys.readouterr().err
        )


def test_help_says_where_the_metrics_go_by_default(capsys):
    """ner-evaluate writes its metrics into the run directory unless told otherwise: --help
    says so (it said only "metrics JSON file")."""
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "<run dir>/eval_<split>_<checkpoint>" in " ".join(capsys.readouterr().out.split())


# --- slow: a trained demo run ----------------------------------------------------------------


@pytest.mark.slow
def test_best_checkpoint_matches_the_log(run_dir, capsys):
    assert main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run_dir / "eval_validation_best.json").read_text())
    entry = eval_entry(run_dir)
    assert_same(metrics, entry, "eval")
    assert (metrics["epoch"], metrics["step"]) == (entry["epoch"], entry["step"])
    assert (metrics["checkpoint"], metrics["split"], metrics["data"]) == (
        "best",
        "validation",
        "demo",
    )
    assert metrics["sentences"] == 101
    assert f"F1 {entry['eval_f1']:.4f}" in out


@pytest.mark.slow
def test_export_and_last_checkpoint_and_test_split_match_the_log(run_dir, tmp_path, capsys):
    out = tmp_path / "hf.json"
    assert main([str(run_dir / "best_model"), "--output", str(out)]) == 0
    hf = json.loads(out.read_text())
    assert hf["checkpoint"] == "hf" and hf["epoch"] is None
    assert_same(hf, eval_entry(run_dir), "eval")
    capsys.readouterr()

    assert main([str(run_dir), "--checkpoint", "last", "--output", "-"]) == 0
    last = json.loads(capsys.readouterr().out)  # the summary went to stderr
    assert_same(last, eval_entry(run_dir, float(QUICK_EPOCHS)), "eval")
    assert last["checkpoint"] == "last" and last["epoch"] == QUICK_EPOCHS

    assert main([str(run_dir / "checkpoints" / "best.pt"), "--split", "test"]) == 0
    test = json.loads((run_dir / "eval_test_best.json").read_text())
    assert_same(test, next(e for e in history(run_dir) if "test_f1" in e), "test")


@pytest.mark.slow
def test_predictions_file_has_one_line_per_word(run_dir, tmp_path):
    from ner.data.files import read_sentences
    from ner.metrics import entity_metrics

    preds = tmp_path / "out" / "preds.conll"
    out = tmp_path / "m.json"
    assert main([str(run_dir), "--predictions", str(preds), "--output", str(out)]) == 0
    metrics = json.loads(out.read_text())
    lines = preds.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""
    rows = [line.split("\t") for line in lines[:-1] if line]
    assert len(rows) == metrics["words"]
    assert lines[:-1].count("") == metrics["sentences"]
    assert all(len(r) == 3 for r in rows)
    # The gold and predicted columns reproduce the reported scores ...
    sentences, gold, pred = [], [], []
    for line in lines[:-1]:
        if not line:
            sentences.append((gold, pred))
            gold, pred = [], []
            continue
        _, g, p = line.split("\t")
        gold.append(g)
        pred.append(p)
    scores = entity_metrics([g for g, _ in sentences], [p for _, p in sentences])
    assert scores["f1"] == pytest.approx(metrics["f1"])
    assert scores["accuracy"] == pytest.approx(metrics["accuracy"])
    # ... and the file reads back as data whose tags are the model's own predictions: F1 1.
    assert [s.tags for s in read_sentences(preds, "validation")] == [p for _, p in sentences]
    again = tmp_path / "again.json"
    assert main([str(run_dir), "--data-file", str(preds), "--output", str(again)]) == 0
    # (Accuracy can be below 1: reading repairs the model's I- tags that continue nothing to B-.)
    assert json.loads(again.read_text())["f1"] == 1.0


@pytest.mark.slow
def test_export_outside_its_run_needs_data(run_dir, tmp_path, capsys):
    from ner.demo.generate import generate_demo

    export = shutil.copytree(run_dir / "best_model", tmp_path / "model")
    assert main([str(export)]) == 2
    assert "--data-file" in capsys.readouterr().err

    # The run's validation data as a file: the same numbers as the run's log.
    data = write_jsonl(tmp_path / "dev.jsonl", generate_demo()["validation"][:101])
    out = tmp_path / "m.json"
    assert main([str(export), "--data-file", str(data), "--output", str(out)]) == 0
    assert_same(json.loads(out.read_text()), eval_entry(run_dir), "eval")
    capsys.readouterr()

    assert main([str(export), "--data-file", str(data), "--max-samples", "7", "--output", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["sentences"] == 7

    bad = write_jsonl(tmp_path / "bad.jsonl", [{"tokens": ["משה"], "ner_tags": ["B-MISC"]}])
    assert main([str(export), "--data-file", str(bad)]) == 2
    assert "unknown tag 'B-MISC'" in capsys.readouterr().err


@pytest.mark.slow
def test_run_on_local_files_without_a_test_split(run_dir, tmp_path, capsys):
    """A run trained on local files: its own data config is used; a missing split is named."""
    import torch

    from ner import checkpoint
    from ner.demo.generate import generate_demo

    demo = generate_demo()
    train = write_jsonl(tmp_path / "train.jsonl", demo["train"][:50])
    dev = write_jsonl(tmp_path / "dev.jsonl", demo["validation"][:30])
    ckpt = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    cfg = yaml.safe_load(ckpt["config"])
    cfg["data"].update(name=None, train_file=str(train), validation_file=str(dev))
    ckpt["config"] = yaml.safe_dump(cfg, allow_unicode=True)
    other = tmp_path / "run"
    checkpoint.atomic_save(ckpt, other / "checkpoints" / "best.pt")
    shutil.copytree(run_dir / "tokenizer", other / "tokenizer")

    assert main([str(other), "--split", "test"]) == 2
    assert "no test split (splits: train, validation)" in capsys.readouterr().err
    assert main([str(other)]) == 0
    metrics = json.loads((other / "eval_validation_best.json").read_text())
    assert metrics["sentences"] == 30 and metrics["data"] == "local files"


@pytest.mark.slow
def test_a_run_saved_before_a_key_was_added_still_evaluates(run_dir, tmp_path, capsys):
    """A saved config is read through the schema: a key an older version did not write (here
    model.head and data.on_error) reads as its default, in the checkpoint's config and in the
    run's config.yaml (which an export inside the run directory takes its settings from)."""
    import torch

    from ner import checkpoint
    from ner.run.layout import launch_file

    other = tmp_path / "old"
    shutil.copytree(run_dir / "tokenizer", other / "tokenizer")
    shutil.copytree(run_dir / "best_model", other / "best_model")
    ckpt = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    cfg = yaml.safe_load(ckpt["config"])
    del cfg["model"]["head"], cfg["data"]["on_error"]
    ckpt["config"] = yaml.safe_dump(cfg, allow_unicode=True)
    checkpoint.atomic_save(ckpt, other / "checkpoints" / "best.pt")
    launched = other / ".hydra" / "config.yaml"
    launched.parent.mkdir(parents=True)
    launched.write_text(ckpt["config"], encoding="utf-8")
    assert launch_file(other, "config.yaml") == launched

    assert main([str(other)]) == 0
    assert_same(
        json.loads((other / "eval_validation_best.json").read_text()), eval_entry(run_dir), "eval"
    )
    out = tmp_path / "hf.json"
    assert main([str(other / "best_model"), "--output", str(out)]) == 0
    assert_same(json.loads(out.read_text()), eval_entry(run_dir), "eval")


@pytest.mark.slow
def test_two_processes_give_the_same_result(run_dir, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for d in (one, two):
        d.mkdir()
    kept = ["--save-predictions", str(one / "kept")]  # ner/report/predictions.py's files
    argv = [str(run_dir), "--output", str(one / "m.json"), "--predictions", str(one / "p")]
    assert main([*argv, *kept]) == 0
    args = [
        str(run_dir),
        "--output",
        str(two / "m.json"),
        "--predictions",
        str(two / "p"),
        "--device",
        "cpu",
        "--save-predictions",
        str(two / "kept"),
    ]
    cmd = torchrun_cmd(["--standalone", "--nproc_per_node=2"], args, module="ner.tools.evaluate")
    done = run_cli(cmd, tmp_path, 300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("metrics written to") == 1  # rank 0 alone speaks
    a, b = (json.loads((d / "m.json").read_text()) for d in (one, two))
    assert (a["world_size"], b["world_size"]) == (1, 2)
    for key in METRICS:
        assert a[key] == pytest.approx(b[key], abs=1e-6)
    assert a["per_type"] == b["per_type"]
    assert (one / "p").read_text() == (two / "p").read_text()
    kept = [(d / "kept" / "validation.demo.json.gz").read_bytes() for d in (one, two)]
    assert kept[0] == kept[1]


@pytest.mark.slow
def test_a_data_file_is_named_not_called_the_validation_split(run_dir, tmp_path, capsys):
    from ner.demo.generate import generate_demo

    data = write_jsonl(tmp_path / "news.jsonl", generate_demo()["test"][:20])
    assert main([str(run_dir), "--data-file", str(data), "--output", "-"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert (metrics["data"], metrics["split"]) == (str(data), None)
    assert f"on {data}: 20 sentences" in captured.err and "split validation" not in captured.err
    # Two files: two sets, one table with their mean.
    other = write_jsonl(tmp_path / "web.jsonl", generate_demo()["test"][20:50])
    assert main([str(run_dir), "--data-file", str(data), str(other), "--output", "-"]) == 0
    captured = capsys.readouterr()
    assert set(json.loads(captured.out)["sets"]) == {"news", "web"}
    assert "| news " in captured.err and "| mean " in captured.err
    # Two files of one name would be one set: refused, naming both.
    (tmp_path / "b").mkdir()
    twin = write_jsonl(tmp_path / "b" / "news.jsonl", generate_demo()["test"][:5])
    assert main([str(run_dir), "--data-file", str(data), str(twin)]) == 2
    assert capsys.readouterr().err == (
        f"error: --data-file: {data} and {twin} would both be the set 'news' (a file's set is "
        "its name without the extension); copy or link one under another name\n"
    )


def test_ctrl_c_is_one_line_and_status_130(run_dir, tmp_path, capsys, monkeypatch):
    """Issue 28: a KeyboardInterrupt traceback before."""
    import ner.tools.evaluate

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ner.tools.evaluate, "evaluate", ctrl_c)  # Ctrl-C in the middle of scoring
    capsys.readouterr()
    out = tmp_path / "m.json"
    try:
        status = main([str(run_dir), "--output", str(out)])
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt reached the caller: a traceback")
    assert status == 130
    assert capsys.readouterr().err == "ner-evaluate: interrupted (Ctrl-C)\n"
    assert not out.exists()


def test_a_hub_dataset_the_hub_does_not_give_is_one_line_without_retries(run_dir, tmp_path):
    """Without HF_HUB_OFFLINE and a hub that does not answer: ner-evaluate asks once, as
    ner-train's precheck does, and reads the local cache (empty here) only; before, the
    libraries' retries printed 12 lines over 29 s before the error."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT="http://127.0.0.1:9")  # a closed port
    cmd = [sys.executable, "-m", "ner.tools.evaluate", str(run_dir)]
    cmd += ["--data-name", "unimelb-nlp/wikiann", "--data-config", "he"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(
        "error: dataset unimelb-nlp/wikiann (he): cannot reach the Hugging Face Hub ("
    )
    assert line.endswith("ner-evaluate: --data-name DIR)")

"""End to end on the tiny model: the demo learns, logs, checkpoints, resumes exactly, exports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import QUICK, eval_entries, run_cli, train_in_process

# its module-scoped fixture built once, on one worker (--dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train_e2e")]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("demo")
    best, history = train_in_process(
        run_dir, [*QUICK, "trainer.epochs=4", "data.max_train_samples=600"]
    )
    return run_dir, best, history


def test_f1_rises_and_history_has_one_eval_entry_per_epoch(demo_run):
    run_dir, best, history = demo_run
    evals = eval_entries(history)
    assert [e["epoch"] for e in evals] == [1.0, 2.0, 3.0, 4.0]
    for e in evals:
        for key in (
            "eval_loss",
            "eval_precision",
            "eval_recall",
            "eval_f1",
            "eval_accuracy",
            "eval_runtime",
            "eval_samples_per_second",
            "train_loss",
        ):
            assert isinstance(e[key], float), key
    assert evals[-1]["eval_f1"] > evals[0]["eval_f1"] + 0.1
    assert best == max(e["eval_f1"] for e in evals)
    train = [e for e in history if "loss" in e and "eval_f1" not in e]
    assert train and all({"loss", "learning_rate", "epoch", "step"} <= e.keys() for e in train)
    final = history[-1]
    assert final["train_runtime"] > 0 and final["train_samples_per_second"] > 0
    assert final["best_metric"] == best


def test_tensorboard_has_the_five_eval_scalars_per_epoch_and_the_card(demo_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _, _ = demo_run
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    for key in ("loss", "precision", "recall", "f1", "accuracy"):
        assert [ev.step for ev in acc.Scalars(f"eval/{key}")] == [1, 2, 3, 4]
    assert acc.Scalars("train/loss") and acc.Scalars("train/lr")
    assert any("model_card" in t for t in tags["tensors"])


def test_tensorboard_card_text_is_the_card_without_its_front_matter(demo_run):
    """The Text tab renders markdown: the card's YAML front matter would be one paragraph."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _, _ = demo_run
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0})
    acc.Reload()
    [tag] = [t for t in acc.Tags()["tensors"] if "model_card" in t]
    [event] = acc.Tensors(tag)
    text = event.tensor_proto.string_val[0].decode("utf-8")
    card = (run_dir / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and not text.startswith("---")
    assert "model-index" not in text and text.startswith("# ")
    assert card.endswith(text)


def test_card_table_equals_log_history(demo_run):
    from card_table import parse_results_table

    run_dir, _, history = demo_run
    rows = parse_results_table((run_dir / "README.md").read_text())
    evals = eval_entries(history)
    assert len(rows) == len(evals)
    for row, e in zip(rows, evals, strict=True):
        assert row["epoch"] == e["epoch"] and row["step"] == e["step"]
        for key in (
            "train_loss",
            "eval_loss",
            "eval_precision",
            "eval_recall",
            "eval_f1",
            "eval_accuracy",
        ):
            assert row[key] == float(f"{e[key]:.4f}"), key
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "finished" and result["test"]["test_f1"] > 0


def test_exported_best_model_tags_hebrew_in_a_pipeline(demo_run):
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    from ner.distributed import Env
    from ner.tools import trained
    from ner.tools.predict import tag_lines

    run_dir, _, _ = demo_run
    model = AutoModelForTokenClassification.from_pretrained(run_dir / "best_model")
    tok = AutoTokenizer.from_pretrained(run_dir / "best_model")
    assert model.config.id2label[1] == "B-PER" and model.config.label2id["I-LOC"] == 6
    tagger = pipeline(
        "token-classification", model=model, tokenizer=tok, aggregation_strategy="simple"
    )
    sentence = "דני כהן נסע לירושלים עם בנק הפועלים"
    out = tagger(sentence)
    assert isinstance(out, list) and out, "the demo model finds entities in a Hebrew sentence"
    assert {o["entity_group"] for o in out} <= {"PER", "ORG", "LOC"}
    # The pipeline tags what ner-predict tags: each word's first sub-token (a SentencePiece
    # piece starting with "▁"; index + 1 past <s>) carries the word's tag, O when not listed.
    by_token = {o["index"]: o["entity"] for o in tagger(sentence, aggregation_strategy="none")}
    firsts = [i + 1 for i, piece in enumerate(tok.tokenize(sentence)) if piece.startswith("▁")]
    [predicted] = tag_lines(trained.load(run_dir / "best_model"), [sentence], 8, Env())
    assert len(firsts) == len(predicted["words"]) == 7
    assert [by_token.get(i, "O") for i in firsts] == predicted["tags"]
    assert predicted["entities"], "ner-predict finds the entities the pipeline found"


def test_resume_mid_epoch_equals_uninterrupted(tmp_path):
    """Stopped after a mid-epoch checkpoint and resumed == never stopped (histories, weights)."""
    common = [*QUICK, "trainer.epochs=3", "trainer.save_every_steps=7"]
    _, full = train_in_process(tmp_path / "full", common)
    # 30 steps per epoch: stop at step 40 (epoch 2), after the checkpoint of step 35.
    train_in_process(tmp_path / "cut", [*common, "trainer.stop_after_steps=40"])
    last = torch.load(tmp_path / "cut/checkpoints/last.pt", weights_only=True)
    assert last["progress"]["global_step"] == 35 and last["progress"]["step_in_epoch"] == 5
    _, resumed = train_in_process(tmp_path / "cut", common)

    def numbers(history):
        return [
            {k: v for k, v in e.items() if "runtime" not in k and "per_second" not in k}
            for e in history
        ]

    a, b = numbers(full), numbers(resumed)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], float):
                assert x[k] == pytest.approx(y[k], abs=1e-6), k
            elif k != "eval_per_type" and k != "test_per_type":
                assert x[k] == y[k], k
    wa = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "cut/checkpoints/last.pt", weights_only=True)["model"]
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=1e-6)
    assert len(list((tmp_path / "cut/checkpoints").glob("step-*.pt"))) == 1  # keep_last=1


def test_resume_inside_a_logging_window_logs_the_losses_of_a_run_never_stopped(tmp_path):
    """The checkpoint of step 36 falls inside the window of the log at step 40 (log_every=5):
    the resumed run's entry at step 40 is the mean over steps 36-40, as the uninterrupted
    run's, not over 37-40."""
    common = [*QUICK, "trainer.save_every_steps=6"]
    _, full = train_in_process(tmp_path / "full", common)
    train_in_process(tmp_path / "cut", [*common, "trainer.stop_after_steps=40"])
    saved = torch.load(tmp_path / "cut/checkpoints/last.pt", weights_only=True)["progress"]
    assert saved["global_step"] == 36
    _, resumed = train_in_process(tmp_path / "cut", common)
    losses = [{(e["step"], "loss"): e["loss"]} for e in full if "learning_rate" in e]
    again = [{(e["step"], "loss"): e["loss"]} for e in resumed if "learning_rate" in e]
    assert len(again) == len(losses) == 12  # 60 steps, one entry every 5
    for a, b in zip(losses, again, strict=True):
        assert a.keys() == b.keys()
        [(key, value)] = a.items()
        assert b[key] == pytest.approx(value, abs=1e-6), key  # step 40 included
    for a, b in zip(eval_entries(full), eval_entries(resumed), strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-6)


def test_a_rerun_of_an_early_stopped_run_names_the_setting_that_trains_it_on(tmp_path, capsys):
    """lr 1e-12: the model does not change, so epoch 2 does not improve on epoch 1 and
    patience 1 stops the run after epoch 2 of 3. Raising trainer.epochs would change nothing;
    the rerun says what would, and that setting does train epoch 3."""
    run = tmp_path / "run"
    args = [*QUICK, "trainer.epochs=3", "optim.lr=1e-12", "trainer.early_stopping_patience=1"]
    train_in_process(run, args)
    capsys.readouterr()
    train_in_process(run, args)
    said = capsys.readouterr().out
    assert "nothing to do" in said and "raise trainer.epochs" not in said, said
    assert (
        "It stopped early after epoch 2 of 3: eval_f1 did not improve for 1 evaluation. To "
        "train on, raise trainer.early_stopping_patience (0: never stop)" in said
    )
    _, history = train_in_process(run, [*args, "trainer.early_stopping_patience=2"])
    assert [e["epoch"] for e in eval_entries(history)] == [1.0, 2.0, 3.0]


def write_jsonl(path, rows) -> None:
    path.write_text(
        "".join(
            json.dumps({"tokens": r["tokens"], "ner_tags": r["ner_tags"]}) + "\n" for r in rows
        ),
        encoding="utf-8",
    )


@pytest.fixture
def local_files_run_cut_at_step_20(tmp_path):
    """A run on local files (train and validation), stopped at step 20 of 2 x 15."""
    from ner.demo.generate import generate_demo

    demo = generate_demo(sizes={"train": 240, "validation": 61, "test": 1})
    write_jsonl(tmp_path / "train.jsonl", demo["train"])
    write_jsonl(tmp_path / "dev.jsonl", demo["validation"])
    files = ["data.name=null", f"data.train_file={tmp_path}/train.jsonl"]
    args = [*QUICK, *files, f"data.validation_file={tmp_path}/dev.jsonl", "trainer.batch_size=16"]
    run = tmp_path / "run"
    train_in_process(run, [*args, "trainer.save_every_steps=10", "trainer.stop_after_steps=20"])
    return run, args, demo


def test_a_resume_onto_other_data_in_the_same_file_is_refused_and_writes_nothing(
    local_files_run_cut_at_step_20,
):
    """The training file's content replaced, same path, same config: one line naming the
    set, and no byte of the run directory changes."""
    from test_rundir import snapshot

    from ner.demo.generate import generate_demo
    from ner.errors import UserError

    run, args, demo = local_files_run_cut_at_step_20
    train_file = run.parent / "train.jsonl"
    other = generate_demo(seed=1, sizes={"train": 240, "validation": 1, "test": 1})["train"]
    write_jsonl(train_file, other)  # another draw of the same kind of sentences
    before = snapshot(run)
    with pytest.raises(UserError) as refused:
        train_in_process(run, args)
    [line] = str(refused.value).splitlines()
    assert line == (
        f"checkpoint {run}/checkpoints/last.pt was trained on other data: train changed since "
        "(sentences or tags); give the run its data back, or choose another hydra.run.dir for a "
        "new run"
    )
    assert snapshot(run) == before
    write_jsonl(train_file, demo["train"])  # given back: it resumes
    write_jsonl(run.parent / "dev.jsonl", demo["validation"][:60])  # but one set is not
    with pytest.raises(UserError, match="other data: validation changed since"):
        train_in_process(run, args)
    assert snapshot(run) == before


def test_a_checkpoint_without_data_fingerprints_resumes_with_a_warning(
    local_files_run_cut_at_step_20, capsys
):
    """Written before checkpoints held fingerprints: its data cannot be checked; it resumes,
    says so, and its next checkpoint holds this data's fingerprints."""
    run, args, _ = local_files_run_cut_at_step_20
    path = run / "checkpoints" / "last.pt"
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt.pop("data")) == {"train", "validation"}
    torch.save(ckpt, path)
    capsys.readouterr()
    _, history = train_in_process(run, args)
    assert [e["epoch"] for e in eval_entries(history)] == [1.0, 2.0]
    assert (
        f"warning: checkpoint {path} predates data fingerprints, so whether this run's data is the "
        "data it was trained on cannot be checked" in capsys.readouterr().err
    )
    assert set(torch.load(path, weights_only=True)["data"]) == {"train", "validation"}


def test_checkpoint_of_another_label_set_is_refused(tmp_path, demo_run):
    from ner.errors import UserError

    run_dir, _, _ = demo_run
    other = tmp_path / "other"
    other.mkdir()
    (other / "t.jsonl").write_text(
        '{"tokens": ["דני", "כהן"], "ner_tags": ["B-PER", "I-PER"]}\n', encoding="utf-8"
    )
    f = str(other / "t.jsonl")
    with pytest.raises(UserError, match="trained for labels"):
        train_in_process(
            other / "run",
            [
                *QUICK,
                "data.name=null",
                "optim.warmup_steps=0",
                f"data.train_file={f}",
                f"data.validation_file={f}",
                f"trainer.resume={run_dir}/checkpoints/last.pt",
            ],
        )


def test_resume_never_refuses_to_overwrite(tmp_path, demo_run):
    from ner.errors import UserError

    run_dir, _, _ = demo_run
    with pytest.raises(UserError, match="already holds a checkpoint"):
        train_in_process(run_dir, [*QUICK, "trainer.resume=never"])
    with pytest.raises(UserError, match="another configuration"):
        train_in_process(run_dir, [*QUICK, "optim.lr=0.5"])


def test_grad_accumulation_equals_double_batch(tmp_path):
    base = [
        *QUICK,
        "model.dropout=0.0",
        "trainer.epochs=1",
        "trainer.log_every=1",
        "trainer.eval_test=false",
    ]
    _, a = train_in_process(
        tmp_path / "a", [*base, "trainer.batch_size=4", "trainer.grad_accum_steps=2"]
    )
    _, b = train_in_process(tmp_path / "b", [*base, "trainer.batch_size=8"])
    la = [e["loss"] for e in a if "learning_rate" in e]
    lb = [e["loss"] for e in b if "learning_rate" in e]
    assert len(la) == len(lb) == 30
    assert la == pytest.approx(lb, abs=1e-5)
    assert eval_entries(a)[-1]["eval_f1"] == pytest.approx(eval_entries(b)[-1]["eval_f1"], abs=1e-5)
    # No test split evaluated: the card's error analysis is the best model's on validation.
    from test_outcome import assert_error_section

    where = "validation (the run evaluated no test split)"
    assert_error_section(tmp_path / "a", where, eval_entries(a)[-1]["eval_per_type"])


def test_non_finite_loss_stops_with_step_and_epoch(tmp_path):
    from ner.loss import Diverged

    with pytest.raises(Diverged, match=r"non-finite loss at optimizer step \d+ \(epoch 1\)"):
        train_in_process(
            tmp_path / "nan",
            [*QUICK, "optim.lr=1e30", "optim.max_grad_norm=0", "trainer.log_every=1"],
        )
    assert not (tmp_path / "nan/checkpoints/last.pt").exists()


@pytest.mark.parametrize(
    "override,expected",
    [
        ("trainer.foo=1", "error: config: trainer.foo=1: Key 'foo' not in 'TrainerConfig'"),
        (
            "trainer.batch_size=abc",
            "error: config: trainer.batch_size=abc: Value 'abc' of type 'str' could not be converted to Integer",
        ),
        ("trainer.batch_size=0", "error: config: trainer.batch_size=0 must be >= 1"),
        ("+foo=1", "error: config: unknown key foo (every key is listed in ner/config.py)"),
    ],
)
def test_bad_config_is_one_line_not_a_traceback(tmp_path, monkeypatch, capfd, override, expected):
    args = [override, f"hydra.run.dir={tmp_path}/r"]
    if override.startswith("+"):  # one through a process of its own, as a user meets it
        out = run_cli([sys.executable, "-m", "ner.train", *args], tmp_path, 120)
    else:  # the others through the same entry point in this process (no torch to import again)
        out = main_in_process(["ner-train", *args], monkeypatch, capfd)
    assert out.returncode == 2
    assert out.stderr.strip() == expected
    assert "Traceback" not in out.stdout + out.stderr


def main_in_process(argv: list[str], monkeypatch, capfd) -> subprocess.CompletedProcess:
    """ner-train's `main` (ner/train.py) with `argv` in this process: its exit status and output."""
    from ner.train import main

    monkeypatch.setattr(sys, "argv", argv)
    capfd.readouterr()
    with pytest.raises(SystemExit) as ended:
        main()
    captured = capfd.readouterr()
    return subprocess.CompletedProcess(argv, ended.value.code, captured.out, captured.err)


def test_hparams_summary_lists_the_run_for_the_dashboard(demo_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir, _, _ = demo_run
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0})
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    assert {
        "_hparams_/experiment",
        "_hparams_/session_start_info",
        "_hparams_/session_end_info",
    } <= content.keys()
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["lr"].number_value == pytest.approx(3e-3) and hp["batch_size"].number_value == 8
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    shown = {m.name.tag for m in experiment.experiment.metric_infos}
    assert {"best/eval_f1", "eval/f1"} <= shown
    assert [ev.step for ev in acc.Scalars("best/eval_f1")] == [1, 2, 3, 4]


def test_resume_mid_epoch_with_length_buckets_equals_uninterrupted(tmp_path):
    """The fast path's static shapes (trainer.length_buckets, CUDA's default) keep the resume
    exact: the padded shapes follow from the epoch plan, dropout (on) draws from the restored
    streams over the same shapes."""
    common = [*QUICK, "trainer.length_buckets=window", "trainer.save_every_steps=7"]
    _, full = train_in_process(tmp_path / "full", common)
    train_in_process(tmp_path / "cut", [*common, "trainer.stop_after_steps=40"])
    assert (
        torch.load(tmp_path / "cut/checkpoints/last.pt", weights_only=True)["progress"][
            "global_step"
        ]
        == 35
    )
    _, resumed = train_in_process(tmp_path / "cut", common)
    losses = [e["loss"] for e in full if "learning_rate" in e]
    assert [e["loss"] for e in resumed if "learning_rate" in e] == pytest.approx(losses, abs=1e-6)
    for a, b in zip(eval_entries(full), eval_entries(resumed), strict=True):
        for key in ("train_loss", "eval_loss", "eval_f1", "eval_accuracy"):
            assert b[key] == pytest.approx(a[key], abs=1e-6), key

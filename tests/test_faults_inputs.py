"""Inputs that cannot work are refused in one line before the run is accepted, and the faults
found around them end in one line too (issue 28): a model directory without its tokenizer, a
tokenizer that knows almost none of the words, an uncreatable cache directory, a torn weights
file, a full disk under TensorBoard."""

from __future__ import annotations

from pathlib import Path

import pytest
import transformers
from conftest import QUICK, compose
from test_bad_input import train_as_the_cli_does
from tiny_encoders import EXTRA, POSITIONS, SHAPE, _save, bert
from tokenizers.implementations import BertWordPieceTokenizer


def without_tokenizer(model_dir: Path) -> Path:
    """What model.save_pretrained() alone leaves: the config and the weights."""
    for path in model_dir.iterdir():
        if path.name not in ("config.json", "model.safetensors"):
            path.unlink()
    return model_dir


def english_bert(out: Path) -> Path:
    """A tiny BERT whose WordPiece vocabulary knows Latin script only: the Hebrew demo's words
    are nearly all its unknown piece."""
    words = BertWordPieceTokenizer(lowercase=True)
    words.train_from_iterator(
        [" ".join(s) for s in EXTRA[:2]] * 10,
        vocab_size=200,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        show_progress=False,
    )
    tok = transformers.BertTokenizerFast(tokenizer_object=words._tokenizer, do_lower_case=True)
    config = transformers.BertConfig(
        vocab_size=len(tok), max_position_embeddings=POSITIONS, pad_token_id=0, **SHAPE
    )
    _save(out, tok, transformers.BertModel, config)
    return out


def prepare_lines(tmp_path: Path, overrides: list[str]) -> list[str]:
    """The start lines ner/prepare.py says for a run of `overrides` (nothing is written)."""
    from ner.distributed import Env
    from ner.prepare import prepare

    lines: list[str] = []
    prepare(compose([*QUICK, "data.cache_dir=null", *overrides]), Env(), tmp_path, lines.append)
    return lines


def test_a_model_directory_without_its_tokenizer_files_is_refused_before_the_run(tmp_path, capfd):
    """transformers 5 reads such a directory as a tokenizer of the special tokens alone: every
    word [UNK], and the run trained and exported with no word."""
    model = tmp_path / "bert"
    bert(model)
    without_tokenizer(model)
    run = tmp_path / "run"
    status, stderr = train_as_the_cli_does(run, [*QUICK, f"model.name_or_path={model}"], capfd)
    assert status == 2, stderr[-2000:]
    [line] = stderr.strip().splitlines()
    assert line == (
        f"error: model: {model} holds no tokenizer files (none of vocab.txt, tokenizer.json), "
        "as model.save_pretrained() alone leaves a directory; save the tokenizer there too "
        "(tokenizer.save_pretrained(DIR)), or copy the tokenizer files of the model it was "
        "trained from"
    )
    assert not run.exists()  # refused before the run was accepted: the directory it made goes


def test_the_advice_for_a_model_directory_without_its_tokenizer_works(tmp_path):
    from ner.tokenizer import load_tokenizer

    model, original = tmp_path / "bert", tmp_path / "original"
    bert(original)
    bert(model)
    without_tokenizer(model)
    load_tokenizer(original).save_pretrained(str(model))  # what the refusal says to do
    [line] = [
        x for x in prepare_lines(tmp_path, [f"model.name_or_path={model}"]) if "tokenizer:" in x
    ]
    assert line == "tokenizer: 0.00% of training words map to the unknown piece [UNK]"


def test_the_share_of_unknown_training_words_is_said_at_start(tmp_path):
    [line] = [x for x in prepare_lines(tmp_path, []) if x.startswith("tokenizer:")]
    assert line == "tokenizer: 0.00% of training words map to the unknown piece <unk>"
    lines = prepare_lines(tmp_path, ["data.config=[he,ar]"])
    [line] = [x for x in lines if x.startswith("tokenizer:")]
    assert line == (
        "tokenizer: 0.00% of training words map to the unknown piece <unk> "
        "(train (he) 0.00%, train (ar) 0.00%)"
    )


def test_a_tokenizer_that_knows_almost_none_of_the_words_is_refused_unless_allowed(tmp_path, capfd):
    model = english_bert(tmp_path / "english-bert")
    run = tmp_path / "run"
    status, stderr = train_as_the_cli_does(run, [*QUICK, f"model.name_or_path={model}"], capfd)
    assert status == 2, stderr[-2000:]
    [line] = stderr.strip().splitlines()
    assert line.startswith(f"error: model: the tokenizer of {model} maps ")
    assert float(line.split(" maps ")[1].split("%")[0]) > 50
    assert line.endswith(
        "% of the words of train to its unknown piece [UNK] alone (more than "
        "model.max_unknown_words=0.5), so the model would see them all as one word; choose a "
        "model whose vocabulary covers the data, or set model.max_unknown_words=1 to train "
        "anyway"
    )
    assert not run.exists()
    # The advice, followed: the run is accepted, and says the share at start.
    lines = prepare_lines(tmp_path, [f"model.name_or_path={model}", "model.max_unknown_words=1"])
    [line] = [x for x in lines if x.startswith("tokenizer:")]
    share = float(line.split("%")[0].split()[-1])
    assert share > 50 and line.endswith("of training words map to the unknown piece [UNK]")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc")
def test_a_cache_dir_where_no_directory_can_be_made_is_one_line_in_the_run_too(tmp_path, capfd):
    """Past the command line's precheck (train() called from Python): the cache's write names
    the file, before the run is accepted."""
    run = tmp_path / "run"
    status, stderr = train_as_the_cli_does(run, [*QUICK, "data.cache_dir=/proc/nope"], capfd)
    assert status == 2, stderr[-2000:]
    [line] = stderr.strip().splitlines()
    assert line.startswith("error: feature cache /proc/nope/") and "cannot be written" in line
    assert not run.exists()


def test_a_full_disk_when_tensorboard_makes_its_event_file_is_one_line_and_recorded(
    tmp_path, capfd, monkeypatch
):
    """The event file is written by TensorBoard's own thread, its error raised again in the
    loop's: an OSError traceback (and the thread's) before; one line, and error.json, now."""
    import errno
    import json

    from tensorboard.compat.tensorflow_stub.io import gfile

    write = gfile.LocalFileSystem._write

    def full(self, filename, content, mode):
        if "tfevents" in str(filename):
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, filename, content, mode)

    monkeypatch.setattr(gfile.LocalFileSystem, "_write", full)
    run = tmp_path / "run"
    overrides = [*QUICK, "trainer.epochs=1"]
    status, stderr = train_as_the_cli_does(run, overrides, capfd)
    assert status == 2, stderr[-2000:]
    [line] = stderr.strip().splitlines()
    assert line == (
        f"error: TensorBoard {run / 'tensorboard'}: cannot write its events (no space left); "
        f"free some space and run again with hydra.run.dir={run} to resume from its last "
        "checkpoint"
    )
    recorded = json.loads((run / "error.json").read_text())
    assert recorded["status"] == "failed" and recorded["message"] == line[len("error: ") :]
    # The advice, followed (the disk has room again): the run goes on in that directory.
    monkeypatch.undo()
    from ner.distributed import Env
    from ner.train import train

    train(compose(overrides), Env(), run)
    assert json.loads((run / "result.json").read_text())["status"] == "finished"


def test_a_torn_weights_file_is_refused_in_one_line_naming_it(tmp_path, capfd):
    """model.safetensors cut short (an interrupted copy): a SafetensorError traceback before."""
    from ner.errors import UserError
    from ner.model import load_export

    model = tmp_path / "bert"
    bert(model)
    weights = model / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    run = tmp_path / "run"
    status, stderr = train_as_the_cli_does(run, [*QUICK, f"model.name_or_path={model}"], capfd)
    assert status == 2, stderr[-2000:]
    [line] = stderr.strip().splitlines()
    assert line.startswith(f"error: model: {weights} cannot be read (SafetensorError: ")
    assert line.endswith("the file is torn (an interrupted copy?): copy it again")
    assert not run.exists()
    with pytest.raises(UserError, match=f"model: {weights} cannot be read"):
        load_export(model)  # ner-evaluate and ner-predict on an export

"""What an earlier attempt left on disk is reused only when it is proven to be this run's, and a
file that cannot be read back whole is rebuilt or named in one line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from conftest import QUICK, train_in_process
from omegaconf import OmegaConf

from ner.data.sentences import Sentence
from ner.demo.generate import generate_split
from ner.distributed import Env
from ner.errors import UserError
from ner.features import cached_features, encode_split
from ner.prepare import tokenizer_for
from ner.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer


def sentences(split: str, n: int) -> list[list[str]]:
    return [ex["tokens"] for ex in generate_split(split, n)]


def pipeline(directory: Path) -> str:
    return load_tokenizer(directory).backend_tokenizer.to_str()


def saved(tok) -> str:
    """`tok`'s pipeline as a run loads it from its saved files."""
    with tempfile.TemporaryDirectory() as d:
        tok.save_pretrained(d)
        return pipeline(Path(d))


def test_a_torn_tokenizer_is_one_line_and_a_resumed_run_trains_it_again(tmp_path, capsys):
    from ner.data.corpus import Corpus

    words = sentences("train", 200)
    tok_dir = tmp_path / "tokenizer"
    save_tokenizer(train_tokenizer(words, 300), tok_dir)
    (tok_dir / "tokenizer.json").write_bytes(b"")  # killed inside save_pretrained
    with pytest.raises(UserError, match=r"the tokenizer in '.*' cannot be read \(JSONDecodeError"):
        load_tokenizer(tok_dir)
    train = [Sentence(w, ["O"] * len(w), f"sentence {i}") for i, w in enumerate(words)]
    corpus = Corpus([("train", train)], [], ["O"], "demo")
    model = OmegaConf.create({"name_or_path": None, "vocab_size": 300})
    resumed_from = tmp_path / "checkpoints" / "last.pt"  # a resumed run of this directory
    tok, trained = tokenizer_for(model, corpus, tmp_path, resumed_from, Env())
    assert trained  # saved again once the run is accepted (ner/train.py)
    assert saved(tok) == saved(train_tokenizer(words, 300))
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"warning: model: the tokenizer in '{tok_dir}' cannot be read")
    assert line.endswith(
        "trained again on the training sentences (the same sentences give the "
        "same tokenizer, to the byte)"
    )


def test_a_run_refused_late_leaves_no_tokenizer_its_rerun_on_other_data_uses(tmp_path):
    """Refused after its tokenizer was trained (the warm-up check needs the data), then run in
    the same directory with another training file: the rerun's tokenizer is its own data's."""
    data = tmp_path / "data"
    data.mkdir()
    for name, split in (("a", "train"), ("b", "validation"), ("dev", "test")):
        rows = generate_split(split, 120)
        with (data / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for ex in rows:
                f.write(json.dumps({"tokens": ex["tokens"], "ner_tags": ex["ner_tags"]}) + "\n")
    run = tmp_path / "run"
    files = ["data.name=null", f"data.validation_file={data / 'dev.jsonl'}", "trainer.epochs=1"]
    with pytest.raises(UserError, match="optim.warmup_steps=1000 is not shorter than training"):
        train_in_process(
            run, [*QUICK, *files, f"data.train_file={data / 'a.jsonl'}", "optim.warmup_steps=1000"]
        )
    train_in_process(run, [*QUICK, *files, f"data.train_file={data / 'b.jsonl'}"])

    def trained_on(name: str) -> str:
        words = [json.loads(row)["tokens"] for row in (data / name).read_text().splitlines()]
        return saved(train_tokenizer(words, compose_vocab_size()))

    assert pipeline(run / "tokenizer") == trained_on("b.jsonl") != trained_on("a.jsonl")


def compose_vocab_size() -> int:
    from conftest import compose

    return compose(QUICK).model.vocab_size


def test_a_torn_feature_cache_is_rebuilt_with_a_warning_naming_it(tmp_path, capsys):
    tok = train_tokenizer(sentences("train", 200), 300)
    words, tags = [["דני", "כהן"], ["שלום"]], [[1, 2], [0]]
    calls = []

    def build():
        calls.append(1)
        return encode_split(tok, words, tags, 32, 4)

    first = cached_features(str(tmp_path), "k1", build, Env())
    path = tmp_path / "k1.json"
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # cut short
    again = cached_features(str(tmp_path), "k1", build, Env())
    assert len(calls) == 2 and again == first and path.read_bytes() == whole
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(
        f"warning: feature cache {path} (data.cache_dir) cannot be read (JSONDecodeError"
    )
    assert line.endswith("; rebuilt")


def test_a_feature_cache_of_another_key_or_length_is_not_trusted(tmp_path):
    from ner.features import read_cache

    tok = train_tokenizer(sentences("train", 200), 300)
    cached_features(str(tmp_path), "k1", lambda: encode_split(tok, [["a"]], [[0]], 32, 4), Env())
    cached = json.loads((tmp_path / "k1.json").read_text())
    (tmp_path / "k2.json").write_text(json.dumps(cached))
    with pytest.raises(UserError, match=r"k2.json \(data.cache_dir\) cannot be read .*key k1"):
        read_cache(tmp_path / "k2.json", "k2")
    cached["features"] = []
    (tmp_path / "k1.json").write_text(json.dumps(cached))
    with pytest.raises(UserError, match="1 windows expected"):
        read_cache(tmp_path / "k1.json", "k1")

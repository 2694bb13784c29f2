"""Every encoder family fine-tunes the same way: BERT (uncased WordPiece), ELECTRA (cased
WordPiece), RoBERTa (byte-level BPE), DeBERTa-v3 (relative positions only) and XLM-R, each a tiny
random model with its own kind of tokenizer (tests/tiny_encoders.py).

Fast: pre-split words get the sub-tokens of running text, so a window holds exactly the ids a
pipeline on the sentence gives, first sub-token labelled, word by word; windows fit the model's
positions. Slow: a few training steps, then ner-evaluate, ner-predict and a transformers pipeline
on the export agree with the run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import QUICK, train_in_process
from tiny_encoders import EXTRA, FAMILIES, POSITIONS

from ner.demo.generate import generate_split
from ner.errors import UserError
from ner.features import IGNORE, encode_split
from ner.model import encoder_family, model_config, window_length
from ner.tokenizer import load_tokenizer

# its module-scoped fixture built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("families")

SENTENCES = [ex["tokens"] for ex in generate_split("validation", 6)] + EXTRA
# The window each family gets: the position table, or 512 where positions are relative only.
WINDOWS = {
    "bert": POSITIONS,
    "electra": POSITIONS,
    "roberta": POSITIONS,
    "deberta-v2": 512,
    "xlm-roberta": POSITIONS,
}
NAMES = {
    "bert": "BERT",
    "electra": "ELECTRA",
    "roberta": "RoBERTa",
    "deberta-v2": "DeBERTa-v2",
    "xlm-roberta": "XLM-RoBERTa",
}


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """family -> the directory of its tiny saved model and tokenizer, built on first use."""
    root, built = tmp_path_factory.mktemp("families"), {}

    def get(family: str) -> Path:
        if family not in built:
            FAMILIES[family](root / family)
            built[family] = root / family
        return built[family]

    return get


def labelled_positions(feature: dict) -> list[int]:
    return [i for i, lab in enumerate(feature["labels"]) if lab != IGNORE]


def as_written(tok, word: str) -> str:
    """The word as the tokenizer's normalizer leaves it (lower case, no accents for BERT)."""
    normalizer = tok.backend_tokenizer.normalizer
    return normalizer.normalize_str(word) if normalizer else word


@pytest.mark.parametrize("family", list(FAMILIES))
def test_pre_split_words_get_the_sub_tokens_of_running_text(models, family):
    """A window is exactly what the tokenizer makes of the sentence as text (its special tokens
    included): what a pipeline feeds the model. Its labels sit on each word's first sub-token,
    and the sub-tokens from there to the next label spell the word."""
    tok = load_tokenizer(models(family))
    for words in SENTENCES:
        labels = [1 + i % 5 for i in range(len(words))]
        [feature], _ = encode_split(tok, [words], [labels], 512, 8)
        assert feature["input_ids"] == tok(" ".join(words))["input_ids"], words
        starts = labelled_positions(feature)
        assert [feature["labels"][i] for i in starts] == labels
        ends = [*starts[1:], len(feature["input_ids"]) - 1]
        for word, a, b in zip(words, starts, ends, strict=True):
            pieces = tok.convert_ids_to_tokens(feature["input_ids"][a:b])
            spelled = tok.convert_tokens_to_string(pieces).replace(" ", "")
            assert spelled == as_written(tok, word).replace(" ", ""), (word, pieces)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_windows_fit_the_models_positions(models, family):
    """The window is the model's position limit (RoBERTa's table less its pad offset; none for
    DeBERTa-v3's relative positions, which get 512): a window that long runs, one more token
    does not where there is a table, and a longer model.max_length is refused in one line."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    directory = models(family)
    tok, config = load_tokenizer(directory), AutoConfig.from_pretrained(directory)
    assert encoder_family(config) == NAMES[family]
    length = window_length(None, tok, config)
    assert length == WINDOWS[family]
    words = [w for s in SENTENCES for w in s] * (2 + length // 40)  # several windows long
    labels = [1 + i % 5 for i in range(len(words))]
    features, stats = encode_split(tok, [words], [labels], length, 8)
    assert stats.split_sentences == 1 and all(len(f["input_ids"]) <= length for f in features)
    assert max(len(f["input_ids"]) for f in features) >= length - 8
    assert [f["labels"][i] for f in features for i in labelled_positions(f)] == labels
    model = AutoModelForTokenClassification.from_pretrained(directory, num_labels=6).eval()
    ids = torch.full((1, length), tok.unk_token_id)
    with torch.no_grad():
        assert model(input_ids=ids).logits.shape == (1, length, 6)
        if family != "deberta-v2":
            with pytest.raises((IndexError, RuntimeError)):
                model(input_ids=torch.full((1, length + 1), tok.unk_token_id))
    assert window_length(length, tok, config) == length
    if family != "deberta-v2":
        with pytest.raises(UserError, match=rf"^config: model.max_length={length + 1} is more "):
            window_length(length + 1, tok, config)


def test_a_tokenizer_without_the_special_tokens_of_a_window_is_refused(tmp_path):
    """GPT-2 style: no cls/sep. One line, at load time, instead of None in every window."""
    from tokenizers.implementations import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["a b c"], vocab_size=300, show_progress=False)
    PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, unk_token="a").save_pretrained(
        tmp_path
    )
    with pytest.raises(
        UserError, match=r"^model: the tokenizer of '.*' has no cls_token, sep_token "
    ):
        load_tokenizer(tmp_path)


@pytest.mark.parametrize(
    "template, shown",
    [(None, "… (no special tokens)"), ("$A [SEP] [CLS]", "… [SEP] [CLS]")],
)
def test_a_tokenizer_that_wraps_sentences_otherwise_than_windows_is_refused(
    tmp_path, template, shown
):
    """Saved without a post-processor, or XLNet-like (cls last): a pipeline on the export would
    feed the model other inputs than the windows ner trains on."""
    from tokenizers.implementations import BertWordPieceTokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    pieces = BertWordPieceTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    pieces.train_from_iterator(["a b c"], vocab_size=50, special_tokens=specials)
    backend = pieces._tokenizer
    backend.post_processor = template and TemplateProcessing(
        single=template, special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    names = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]")
    PreTrainedTokenizerFast(tokenizer_object=backend, **names).save_pretrained(tmp_path)
    with pytest.raises(UserError) as e:
        load_tokenizer(tmp_path)
    assert str(e.value) == (
        f"model: the tokenizer of '{tmp_path}' wraps a sentence as {shown}; ner builds windows "
        "as [CLS] … [SEP], so a pipeline on the export would feed the model other inputs than "
        "training did"
    )


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_family_trains_evaluates_exports_and_tags_through_a_pipeline(
    models, family, tmp_path, capsys
):
    from transformers import pipeline

    from ner.tools.evaluate import main as evaluate_main
    from ner.tools.predict import main as predict_main

    run = tmp_path / "run"
    # A random-init encoder wants the tiny model's learning rate, not a pretrained one's.
    overrides = [*QUICK, f"model.name_or_path={models(family)}", "optim.lr=3e-3"]
    _, history = train_in_process(run, overrides)
    logged = [e for e in history if "eval_f1" in e][-1]["eval_f1"]
    for target in (run, run / "best_model"):  # the best checkpoint, and the export
        out = tmp_path / "metrics.json"
        assert evaluate_main([str(target), "--output", str(out)]) == 0
        assert json.loads(out.read_text())["f1"] == pytest.approx(logged, abs=1e-6)
    capsys.readouterr()
    lines = [" ".join(words) for words in SENTENCES]
    assert predict_main([str(run / "best_model"), *lines]) == 0
    predicted = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["words"] for p in predicted] == SENTENCES
    for line, p in zip(lines, predicted, strict=True):
        assert all(line[e["start"] : e["end"]] == e["text"] for e in p["entities"])
    assert any(tag != "O" for p in predicted for tag in p["tags"]), "the run learned nothing"
    # The export in a pipeline, on the running text: at each word's first sub-token, the label
    # ner-predict gave the word.
    tagger = pipeline("token-classification", model=str(run / "best_model"), ignore_labels=[])
    tok = tagger.tokenizer
    for line, words, p in zip(lines, SENTENCES, predicted, strict=True):
        pre_split = tok(words, is_split_into_words=True)
        tokens = tok.convert_ids_to_tokens(pre_split["input_ids"])
        first: dict[int, str] = {}
        for token in tagger(line):
            assert token["word"] == tokens[token["index"]], (line, token)
            first.setdefault(pre_split.word_ids()[token["index"]], token["entity"])
        assert [first[i] for i in range(len(words))] == p["tags"], line


def test_a_dropout_the_model_does_not_read_is_refused(tmp_path):
    """DistilBERT names its dropouts otherwise: model.dropout would have been set, unread."""
    from conftest import compose
    from transformers import DistilBertConfig

    DistilBertConfig(vocab_size=50, dim=32, n_layers=1, n_heads=2).save_pretrained(tmp_path)
    model_cfg = compose([*QUICK, f"model.name_or_path={tmp_path}", "model.dropout=0.2"]).model
    with pytest.raises(UserError) as e:
        model_config(model_cfg, ["O", "B-PER", "I-PER"], None)
    assert str(e.value) == (
        "config: model.dropout=0.2: a distilbert model has no hidden_dropout_prob or "
        "attention_probs_dropout_prob; leave model.dropout null for this model"
    )
    bert = tmp_path / "bert"
    FAMILIES["bert"](bert)
    model_cfg = compose([*QUICK, f"model.name_or_path={bert}", "model.dropout=0.2"]).model
    config = model_config(model_cfg, ["O", "B-PER", "I-PER"], None)
    assert (config.hidden_dropout_prob, config.attention_probs_dropout_prob) == (0.2, 0.2)

"""Word/sub-token alignment, windows and collation, on hand-written cases and random ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.batching import Collator
from ner.features import IGNORE, encode_sentence, gather_word_predictions, plan_windows

# its module-scoped fixture built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("features")

CLS, SEP, UNK = 0, 2, 3


def labelled(feature: dict) -> list[int]:
    return [lab for lab in feature["labels"] if lab != IGNORE]


def test_first_piece_labelled_rest_ignored():
    pieces = [[10, 11, 12], [13], [14, 15]]
    [f] = encode_sentence(
        pieces, [1, 2, 0], max_length=16, stride=2, cls_id=CLS, sep_id=SEP, unk_id=UNK
    )
    assert f["input_ids"] == [CLS, 10, 11, 12, 13, 14, 15, SEP]
    assert f["labels"] == [IGNORE, 1, IGNORE, IGNORE, 2, 0, IGNORE, IGNORE]


def test_word_without_pieces_gets_unk_and_keeps_label():
    [f] = encode_sentence([[10], [], [11]], [0, 5, 0], 16, 2, CLS, SEP, UNK)
    assert f["input_ids"] == [CLS, 10, UNK, 11, SEP]
    assert labelled(f) == [0, 5, 0]


def test_long_sentence_split_into_windows_each_word_labelled_once():
    pieces = [[100 + i, 200 + i] for i in range(20)]  # 40 pieces
    labels = list(range(20))
    feats = encode_sentence(
        pieces, labels, max_length=12, stride=2, cls_id=CLS, sep_id=SEP, unk_id=UNK
    )
    assert len(feats) > 1
    assert all(len(f["input_ids"]) <= 12 for f in feats)
    assert [lab for f in feats for lab in labelled(f)] == labels
    # windows after the first start with context: their first word is not labelled
    assert feats[1]["labels"][1] == IGNORE


def test_single_word_longer_than_window_is_capped_not_lost():
    pieces = [[5], list(range(50, 80)), [6]]
    feats = encode_sentence(
        pieces, [0, 1, 0], max_length=10, stride=1, cls_id=CLS, sep_id=SEP, unk_id=UNK
    )
    assert [lab for f in feats for lab in labelled(f)] == [0, 1, 0]
    assert all(len(f["input_ids"]) <= 10 for f in feats)


def test_plan_windows_fits_in_one():
    assert [(w.start, w.end, w.own_start, w.own_end) for w in plan_windows([1, 2, 3], 6, 1)] == [
        (0, 3, 0, 3)
    ]


def test_gather_word_predictions_reorders_windows():
    feats = [{"example": 1, "window": 0}, {"example": 0, "window": 1}, {"example": 0, "window": 0}]
    preds = [[7], [2, 3], [1]]
    assert gather_word_predictions(feats, preds, 2) == [[1, 2, 3], [7]]


def test_collator_pads_and_masks():
    batch = Collator(pad_id=1, pad_to_multiple_of=8)(
        [
            {"input_ids": [0, 5, 2], "labels": [IGNORE, 3, IGNORE]},
            {"input_ids": [0, 2], "labels": [IGNORE, IGNORE]},
        ]
    )
    assert batch["input_ids"].shape == (2, 8)
    assert batch["input_ids"][1].tolist() == [0, 2] + [1] * 6
    assert batch["attention_mask"].sum().item() == 5
    assert batch["labels"][0].tolist()[:3] == [IGNORE, 3, IGNORE]


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=60),
    max_length=st.integers(min_value=8, max_value=64),
    stride=st.integers(min_value=0, max_value=8),
)
def test_every_word_exactly_one_labelled_position(counts, max_length, stride):
    if 2 * stride + 2 >= max_length:
        stride = 0
    pieces = [[1000 + 100 * i + k for k in range(c)] for i, c in enumerate(counts)]
    labels = [i % 7 for i in range(len(counts))]
    feats = encode_sentence(pieces, labels, max_length, stride, CLS, SEP, UNK)
    assert all(len(f["input_ids"]) <= max_length for f in feats)
    assert [lab for f in feats for lab in labelled(f)] == labels
    # the labelled position of each word is that word's first piece (or unk for an empty word)
    for f in feats:
        for tok, lab in zip(f["input_ids"], f["labels"], strict=True):
            if lab != IGNORE:
                assert tok == UNK or tok % 100 == 0
    # reassembly: one prediction per word, in order
    for k, f in enumerate(feats):
        f["example"], f["window"] = 0, k
    assert gather_word_predictions(feats, [labelled(f) for f in feats], 1) == [labels]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from ner.demo.generate import generate_split
    from ner.tokenizer import load_tokenizer, train_tokenizer

    out = tmp_path_factory.mktemp("tok")
    train_tokenizer((ex["tokens"] for ex in generate_split("train", 300)), 400, out)
    return load_tokenizer(out)


HEBREW_LATIN = st.text(
    alphabet=st.sampled_from(
        list("אבגדהוזחטיכלמנסעפצקרשת")
        + list("abcXYZ019")
        + list(".,:;!?()'\"-")
        + [
            "\u200d",
            "\u200c",
            "\u200e",
            "\u200f",
            "\u202b",
            "\u0301",
            "\u05b7",
            "😀",
            "\U0001f1ee",
            "\x07",
        ]
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(words=st.lists(HEBREW_LATIN, min_size=1, max_size=40), max_length=st.integers(12, 40))
def test_real_tokenizer_alignment_and_windows(tokenizer, words, max_length):
    """Any words (Hebrew, Latin, digits, punctuation, emoji, bidi marks, zero-width joiners,
    combining marks, control characters, very long words): one labelled position per word, and
    windows reassemble to one prediction per word."""
    from ner.features import encode_split

    labels = [i % 7 for i in range(len(words))]
    feats, stats = encode_split(tokenizer, [words], [labels], max_length, stride=3)
    assert stats.words == len(words)
    assert all(len(f["input_ids"]) <= max_length for f in feats)
    assert [lab for f in feats for lab in labelled(f)] == labels
    assert gather_word_predictions(feats, [labelled(f) for f in feats], 1) == [labels]


def test_feature_cache_is_keyed_by_content_and_returns_what_was_built(tmp_path, tokenizer):
    from ner.distributed import Env
    from ner.features import cache_key, cached_features, encode_split

    words, tags = [["דני", "כהן"], ["שלום"]], [[1, 2], [0]]
    key = cache_key(words, tags, ["O", "B-PER", "I-PER"], tokenizer, 32, 4)
    assert key != cache_key(words, tags, ["O", "B-PER", "I-PER"], tokenizer, 16, 4)
    assert key != cache_key(
        [["דני", "כהן"], ["שלוםם"]], tags, ["O", "B-PER", "I-PER"], tokenizer, 32, 4
    )
    calls = []

    def build():
        calls.append(1)
        return encode_split(tokenizer, words, tags, 32, 4)

    first = cached_features(str(tmp_path), key, build, Env())
    again = cached_features(str(tmp_path), key, build, Env())
    assert len(calls) == 1 and (tmp_path / f"{key}.json").is_file()
    assert again[0] == first[0] and again[1] == first[1]


def test_canonical_pieces_undo_the_trainers_per_process_choices():
    from ner.tokenizer import canonical_pieces

    # As the trainer leaves them: scores with noisy last digits, and characters it had to keep
    # on a ladder min + k * 1e-4 in a per-process order (here: two different orders).
    learned = [["▁a", -2.1000000004], ["b", -5.0000000001], ["▁", -3.25], ["q", -9.5]]
    one = [*learned, ["x", -9.5], ["y", -9.4999], ["z", -9.4998]]
    two = [*learned, ["z", -9.5], ["x", -9.4999], ["y", -9.4998]]
    assert canonical_pieces(one) == canonical_pieces(two)
    assert canonical_pieces(one) == [
        ["▁a", -2.1],
        ["▁", -3.25],
        ["b", -5.0],
        ["q", -9.5],
        ["x", -9.5],
        ["y", -9.5],
        ["z", -9.5],
    ]


SHARED_WIKIANN = Path(__file__).resolve().parents[2] / "shared" / "wikiann"
DEMO_WORDS = (
    "from ner.demo.generate import generate_split\n"
    "words = [ex['tokens'] for lang in ('he', 'ar') for ex in generate_split('train', "
    "language=lang)]\n"
)
WIKIANN_WORDS = (
    "import datasets\n"
    f"words = datasets.load_dataset({str(SHARED_WIKIANN)!r}, 'he', split='train[:4000]')['tokens']\n"
)


def tokenizer_digests_in_two_processes(tmp_path, words_code: str) -> list[str]:
    """md5 of the tokenizer file trained in two fresh processes, without TOKENIZERS_PARALLELISM
    (which does not make the trainer deterministic either)."""
    import hashlib
    import os
    import subprocess
    import sys

    code = (
        f"import sys; from pathlib import Path\n{words_code}"
        "from ner.tokenizer import train_tokenizer\n"
        "train_tokenizer(words, 1000, Path(sys.argv[1]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    digests = []
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], env=env, check=True)
        digests.append(hashlib.md5((tmp_path / name / "tokenizer.json").read_bytes()).hexdigest())
    return digests


@pytest.mark.slow
def test_the_tiny_models_tokenizer_is_the_same_file_in_every_process(tmp_path):
    """4,000 sentences in two scripts: the demo's Hebrew and Arabic."""
    first, second = tokenizer_digests_in_two_processes(tmp_path, DEMO_WORDS)
    assert first == second


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_WIKIANN.is_dir(), reason="needs ../shared/wikiann (real WikiANN)")
def test_the_tokenizer_of_4000_real_sentences_is_the_same_file_in_every_process(tmp_path):
    """Real WikiANN Hebrew, where the trainer's per-process choices used to show (the characters
    it appends in hash-set order): the first 4,000 training sentences."""
    first, second = tokenizer_digests_in_two_processes(tmp_path, WIKIANN_WORDS)
    assert first == second


def test_the_tiny_tokenizer_tokenizes_in_training_as_it_does_read_back(tmp_path):
    """The tokenizer a run trains and uses is the one its saved files give every later reader
    (a resume, ner-evaluate, ner-predict, the export): words of invisible marks and compatibility
    forms (WikiANN he has a word of two U+200F marks) get the same sub-tokens from both."""
    from ner.tokenizer import load_tokenizer, train_tokenizer

    words = [["דוד", "בן-גוריון", ",", "ﬁ", "①"], ["שלום", "\u200f\u200f", "עולם"]] * 50
    trained = train_tokenizer(words, 200, tmp_path / "tok")
    read_back = load_tokenizer(tmp_path / "tok")
    for sentence in [*words[:2], ["\u200f"], ["a\u200fb", "ﬃ"]]:
        ids = [t(sentence, is_split_into_words=True)["input_ids"] for t in (trained, read_back)]
        assert ids[0] == ids[1], sentence

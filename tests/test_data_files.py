"""read_sentences: the formats, and one test per kind of bad file."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ner import LABELS_WIKIANN
from ner.data.files import read_sentences
from ner.data.sentences import Sentence
from ner.errors import DataError


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def read_error(path, split="train"):
    with pytest.raises(DataError) as e:
        read_sentences(path, split)
    return str(e.value)


# --- CoNLL ---------------------------------------------------------------------------------------


def test_conll_sentences_and_locations(tmp_path):
    path = write(
        tmp_path,
        "train.conll",
        "-DOCSTART- -X- O O\n\nדוד\tB-PER\nבן-גוריון\tI-PER\n\n\n"
        "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n",
    )
    assert read_sentences(path, "train") == [
        Sentence(["דוד", "בן-גוריון"], ["B-PER", "I-PER"], f"{path} (split train), line 3"),
        Sentence(["EU", "rejects"], ["B-ORG", "O"], f"{path} (split train), line 7"),
    ]


def test_conll_docstart_ends_a_sentence(tmp_path):
    path = write(tmp_path, "a.iob", "a O\n-DOCSTART- O\nb O\n")
    assert [s.tokens for s in read_sentences(path, "test")] == [["a"], ["b"]]


def test_conll_crlf_and_bom(tmp_path):
    path = write(tmp_path, "a.txt", b"\xef\xbb\xbfa\tO\r\nb\tB-LOC\r\n\r\nc\tO\r\n")
    sentences = read_sentences(path, "train")
    assert [(s.tokens, s.tags) for s in sentences] == [(["a", "b"], ["O", "B-LOC"]), (["c"], ["O"])]
    assert sentences[1].where.endswith("line 4")


def test_conll_keeps_marks_and_nbsp_inside_tokens(tmp_path):
    token = "\u200fא\u00a0ב\u200d"
    path = write(tmp_path, "a.tsv", f"{token}\tB-PER\n{token} B-PER\n")
    assert read_sentences(path, "train")[0].tokens == [token, token]


def test_conll_one_field(tmp_path):
    path = write(tmp_path, "train.conll", "a\tO\n\nb\tO\nשלום\n")
    assert read_error(path) == (
        f"{path} (split train), line 4: expected 'token<TAB>tag', got 1 field: 'שלום'"
    )


def test_conll_tokens_carry_their_lines(tmp_path):
    # prediction files have three columns (token, gold, predicted): the tag is the last
    path = write(tmp_path, "pred.conll", "\nדוד\tB-PER\tO\nבן-גוריון\tI-PER\tO\n\n\nא\tO\tO\n")
    sentences = read_sentences(path, "test")
    assert [(s.tags, s.lines) for s in sentences] == [(["O", "O"], [2, 3]), (["O"], [6])]


@pytest.mark.parametrize(
    "content, number, count, expected, first, kind",
    [
        ("a\tO\n\nb\tO\nc\tB-PER\tx\n", 4, 3, 2, 1, "tab"),
        ("a\tNN\tO\nb\tO\n", 2, 2, 3, 1, "tab"),
        ("-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ O\n", 4, 3, 4, 3, "space"),
    ],
)
def test_conll_every_line_has_the_same_fields(
    tmp_path, content, number, count, expected, first, kind
):
    path = write(tmp_path, "train.conll", content)
    line = content.split("\n")[number - 1]
    assert read_error(path) == (
        f"{path} (split train), line {number}: {count} fields, expected {expected} as on line "
        f"{first} (the first {kind}-separated line); every line needs the same columns, token "
        f"first and tag last: {line!r}"
    )


def test_conll_empty_token_in_tab_mode_is_left_to_validation(tmp_path):
    path = write(tmp_path, "a.conll", "\tB-PER\n")
    assert read_sentences(path, "train")[0].tokens == [""]


# --- JSON lines ----------------------------------------------------------------------------------


def test_jsonl_sentences_and_locations(tmp_path):
    row = {"tokens": ["תל", "אביב"], "ner_tags": ["B-LOC", "I-LOC"], "id": 1}
    lines = [json.dumps(row, ensure_ascii=False), "", json.dumps(row)]
    path = write(tmp_path, "dev.jsonl", "\r\n".join(lines) + "\r\n")
    sentences = read_sentences(path, "validation")
    assert [s.where for s in sentences] == [
        f"{path} (split validation), line 1",
        f"{path} (split validation), line 3",
    ]
    assert sentences[0] == Sentence(["תל", "אביב"], ["B-LOC", "I-LOC"], sentences[0].where)
    assert sentences[1].tokens == sentences[0].tokens


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"tokens": ["a"], "ner_tags": ["O"]', "invalid JSON (Expecting ',' delimiter at column"),
        ('[{"tokens": []}]', "expected an object with 'tokens' and 'ner_tags', got list"),
        ('{"tokens": ["a"]}', "missing key 'ner_tags' (found keys: ['tokens'])"),
        ('{"tokens": "a b", "ner_tags": []}', "'tokens' must be a list of strings, got str"),
        ('{"tokens": ["a", 5], "ner_tags": []}', "tokens[1] is int (5), expected a string"),
        ('{"tokens": ["a"], "ner_tags": [null]}', "ner_tags[0] is NoneType (None), expected"),
        (
            '{"tokens": ["a", "b"], "ner_tags": [0, 3]}',
            "'ner_tags' holds integer ids (ner_tags[0] = 0); JSON-lines files need tag names",
        ),
    ],
)
def test_jsonl_bad_line(tmp_path, line, problem):
    good = '{"tokens": ["a"], "ner_tags": ["O"]}'
    path = write(tmp_path, "test.json", f"{good}\n{good}\n{line}\n")
    msg = read_error(path, "test")
    assert msg.startswith(f"{path} (split test), line 3: ")
    assert problem in msg


def test_json_array_gets_a_hint(tmp_path):
    path = write(tmp_path, "a.json", '[\n{"tokens": ["a"], "ner_tags": ["O"]}\n]\n')
    assert "not a JSON array" in read_error(path)


# --- file-level problems -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.conll"
    assert read_error(path, "validation") == f"{path} (split validation): file not found"


def test_directory(tmp_path):
    path = tmp_path / "dir.conll"
    path.mkdir()
    assert read_error(path) == f"{path} (split train): is a directory, expected a file"


def test_unknown_suffix(tmp_path):
    path = write(tmp_path, "train.csv", "a,O\n")
    assert read_error(path).startswith(f"{path} (split train): unknown file type '.csv'; use one")


@pytest.mark.parametrize(
    "name, content",
    [
        ("a.conll", ""),
        ("a.conll", "\n \n\r\n"),
        ("a.conll", "-DOCSTART- O\n\n"),
        ("a.jsonl", ""),
        ("a.jsonl", "\n \n\r\n"),
    ],
)
def test_no_sentences(tmp_path, name, content):
    path = write(tmp_path, name, content)
    assert read_error(path).startswith(f"{path} (split train): no sentences found (expected ")


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_non_utf8_bytes(tmp_path, bom):
    # "שלום" in Windows-1255, on line 3
    data = bom + b"a\tO\n\n" + "שלום".encode("cp1255") + b"\tO\n"
    path = write(tmp_path, "train.conll", data)
    offset = len(bom) + 5
    msg = read_error(path)
    assert msg.startswith(
        f"{path} (split train), line 3: byte 0xF9 at byte offset {offset} is not valid UTF-8; "
        "convert the file to UTF-8"
    )
    assert data[offset] == 0xF9


# --- round trip ----------------------------------------------------------------------------------

# Hebrew letters and points, Latin, digits, punctuation, and marks that may sit inside a token
# (LRM, RLM, ZWJ, ZWNJ, NBSP); never ASCII blanks or line breaks, which delimit fields.
_ALPHABET = st.sampled_from(
    [chr(c) for c in range(0x05D0, 0x05EB)]
    + list("abcXYZé0123456789.,:;!?'\"()-_/#%\u05bc\u05b8")
    + ["\u200e", "\u200f", "\u200d", "\u200c", "\u00a0"]
)
_TOKEN = st.text(_ALPHABET, min_size=1, max_size=8).filter(lambda t: not t.startswith("-DOCSTART-"))
_SENTENCE = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.lists(_TOKEN, min_size=n, max_size=n),
        st.lists(st.sampled_from(LABELS_WIKIANN), min_size=n, max_size=n),
    )
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sentences=st.lists(_SENTENCE, min_size=1, max_size=5),
    sep=st.sampled_from(["\t", " ", "  "]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_conll_round_trip(tmp_path, sentences, sep, newline):
    blocks = [newline.join(f"{t}{sep}{g}" for t, g in zip(*s, strict=True)) for s in sentences]
    path = tmp_path / "round.conll"
    path.write_bytes((newline * 2).join(blocks).encode("utf-8") + newline.encode())
    back = read_sentences(path, "train")
    assert [(s.tokens, s.tags) for s in back] == [(list(t), list(g)) for t, g in sentences]
    line = 1
    for sentence, (tokens, _) in zip(back, sentences, strict=True):
        assert sentence.where == f"{path} (split train), line {line}"
        line += len(tokens) + 1

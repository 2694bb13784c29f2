"""validate_split: one test per kind of bad input, in raise and repair mode; the IOB2 check
before a label set is derived from tags."""

import re

import pytest

from ner import LABELS_WIKIANN
from ner.data.checks import check_label_sets, parse_labels, validate_split
from ner.data.sentences import Sentence, entity_counts
from ner.data.sources import labels_from_tags
from ner.errors import DataError, UserError

WHERE = "unimelb-nlp/wikiann (he), split train, row 17"


def sent(tokens, tags, where=WHERE):
    return Sentence(tokens=list(tokens), tags=list(tags), where=where)


def run(sentences, on_error="raise"):
    return validate_split(sentences, LABELS_WIKIANN, "train", on_error=on_error)


def test_valid_split_passes_unchanged():
    good = [
        sent(["דוד", "בן", "גוריון", "נולד"], ["B-PER", "I-PER", "I-PER", "O"]),
        sent(["Tel", "Aviv"], ["B-LOC", "I-LOC"]),
    ]
    kept, report = run(good)
    assert kept == good
    assert (report.sentences, report.tokens, report.repaired) == (2, 6, 0)
    assert report.lines() == ["split train: 2 sentences, 6 tokens, no problems found"]


@pytest.mark.parametrize("on_error", ["raise", "repair"])
def test_length_mismatch_is_always_an_error(on_error):
    with pytest.raises(DataError, match=re.escape(f"{WHERE}: 3 tokens but 2 tags")):
        run([sent(["a", "b", "c"], ["O", "O"])], on_error)


@pytest.mark.parametrize("on_error", ["raise", "repair"])
def test_unknown_tag_is_always_an_error(on_error):
    with pytest.raises(DataError) as e:
        run([sent(["a", "b"], ["O", "B-MISC"])], on_error)
    msg = str(e.value)
    assert msg.startswith(f"{WHERE}: token 2 of 2 ('b') has unknown tag 'B-MISC'")
    assert "known labels: O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC" in msg


@pytest.mark.parametrize("tag, label", [("b-loc", "B-LOC"), ("o", "O"), ("B-Loc", "B-LOC")])
def test_unknown_tag_that_differs_only_in_case_says_so(tag, label):
    with pytest.raises(DataError) as e:
        run([sent(["a", "b"], ["O", tag])])
    assert str(e.value).startswith(
        f"{WHERE}: token 2 of 2 ('b') has unknown tag {tag!r} (did you mean {label!r}? tags are "
        "case-sensitive); known labels: O, B-PER"
    )


def test_unknown_numeric_tag_hints_at_ids():
    with pytest.raises(DataError, match=r"unknown tag '3' \(tags must be names"):
        run([sent(["a"], ["3"])])


def test_empty_sentence_raises_then_is_dropped_on_repair():
    sentences = [sent(["a"], ["O"]), sent([], [], where="x.conll (split train), line 9")]
    with pytest.raises(DataError, match=re.escape("x.conll (split train), line 9: empty sentence")):
        run(sentences)
    kept, report = run(sentences, "repair")
    assert kept == sentences[:1]
    assert report.dropped_empty == 1
    assert "dropped 1 empty sentences (e.g. x.conll (split train), line 9)" in report.lines()[1]


@pytest.mark.parametrize(
    "token, shown",
    [
        ("", "is empty"),
        ("   ", "U+0020 SPACE"),
        ("\u200d", "U+200D ZERO WIDTH JOINER"),
        ("\u200f\u202b", "U+200F RIGHT-TO-LEFT MARK, U+202B RIGHT-TO-LEFT EMBEDDING"),
        ("\u2067\u00a0", "U+2067 RIGHT-TO-LEFT ISOLATE, U+00A0 NO-BREAK SPACE"),
        ("\u2028", "U+2028 LINE SEPARATOR"),
    ],
)
def test_invisible_token_raises_with_codepoints(token, shown):
    with pytest.raises(DataError) as e:
        run([sent(["שלום", token, "עולם"], ["O", "B-LOC", "O"])])
    msg = str(e.value)
    assert msg.startswith(f"{WHERE}: token 2 of 3 ")
    assert shown in msg
    assert "losing its tag 'B-LOC'" in msg


def test_invisible_token_is_kept_with_its_tag_on_repair():
    sentences = [sent(["שלום", "\u200e", "ירושלים"], ["O", "B-LOC", "I-LOC"])]
    kept, report = run(sentences, "repair")
    assert kept == sentences  # the token and its label survive
    assert report.invisible_tokens == 1
    assert report.tokens == 3


@pytest.mark.parametrize("token", ["\u200fשלום", "a\u200d", "\u00a0x", "\ue000", "ש\u05bc"])
def test_tokens_with_a_visible_character_are_fine(token):
    kept, report = run([sent([token], ["B-PER"])])
    assert report.repaired == 0


def test_non_string_token_is_an_error():
    with pytest.raises(DataError, match=re.escape(f"{WHERE}: token 1 of 1 is NoneType")):
        run([sent([None], ["O"])])


@pytest.mark.parametrize(
    "tags, i, after, context",
    [
        (["I-PER", "O"], 1, "starts the sentence", "tags 1-2: [I-PER] O"),
        (["B-PER", "O", "I-PER", "O"], 3, "follows O", "tags 1-4: B-PER O [I-PER] O"),
        (["O", "B-LOC", "I-PER"], 3, "follows B-LOC", "tags 1-3: O B-LOC [I-PER]"),
    ],
)
def test_dangling_inside_tag_raises_with_context(tags, i, after, context):
    tokens = [f"t{j}" for j in range(len(tags))]
    with pytest.raises(DataError) as e:
        run([sent(tokens, tags)])
    msg = str(e.value)
    assert msg.startswith(
        f"{WHERE}: token {i} of {len(tags)} ('t{i - 1}') has tag I-PER but {after}"
    )
    assert context in msg
    assert "rewrites it to B-PER" in msg


@pytest.mark.parametrize(
    "tokens, tags, problem",
    [
        (["גר", "בחיפה"], ["O", "I-LOC"], "token 2 of 2 ('בחיפה') has tag I-LOC but follows O"),
        (["גר", "בחיפה"], ["O", "B-MISC"], "token 2 of 2 ('בחיפה') has unknown tag 'B-MISC'"),
        (["גר", "\u200f"], ["O", "O"], "token 2 of 2 is invisible (U+200F RIGHT-TO-LEFT MARK)"),
    ],
)
def test_a_token_problem_names_the_tokens_own_line(tokens, tags, problem):
    where = "train.conll (split train), line 8"
    with pytest.raises(DataError) as e:
        run([Sentence(tokens, tags, where, lines=[8, 9])])
    msg = str(e.value)
    assert msg.startswith(f"{where}: {problem}")
    assert msg.endswith(" (token on line 9)")


def test_a_problem_with_the_first_token_names_only_the_sentences_line():
    sentence = Sentence(["בחיפה", "גר"], ["I-LOC", "O"], "x.conll (split train), line 8", [8, 9])
    with pytest.raises(DataError) as e:
        run([sentence])
    assert "line 9" not in str(e.value)
    kept, _ = run([sentence], "repair")
    assert kept[0].lines == [8, 9]  # a repaired sentence keeps its lines for later messages


def test_dangling_inside_tags_are_rewritten_on_repair():
    original = sent(["a", "b", "c", "d", "e"], ["I-PER", "I-PER", "O", "I-LOC", "I-ORG"])
    kept, report = run([original], "repair")
    # the first I-PER starts PER; the second continues it; the ORG after LOC starts a new entity
    assert kept[0].tags == ["B-PER", "I-PER", "O", "B-LOC", "B-ORG"]
    assert original.tags == ["I-PER", "I-PER", "O", "I-LOC", "I-ORG"]  # input untouched
    assert report.repaired_iob == 3
    assert report.lines()[1] == (
        f"split train: rewrote 3 I- tags that continued no entity to B- (e.g. {WHERE})"
    )


def test_repair_counts_across_sentences():
    sentences = [sent(["a"], ["I-LOC"], where=f"row {n}") for n in range(5)]
    sentences.append(sent([], [], where="row 5"))
    kept, report = run(sentences, "repair")
    assert len(kept) == 5 and report.repaired_iob == 5 and report.dropped_empty == 1
    assert report.examples["iob"] == ["row 0", "row 1", "row 2"]


@pytest.mark.parametrize(
    "labels, problem",
    [
        (["O", "PER"], "'PER' is not an IOB2 tag"),
        (["O", "B-"], "'B-' is not an IOB2 tag"),
        (["O", "B-PER", "B-PER"], "duplicated ['B-PER']"),
        (["O", "I-PER"], "'I-PER' has no matching 'B-PER'"),
    ],
)
def test_labels_must_be_iob2(labels, problem):
    with pytest.raises(UserError, match=re.escape(problem)):
        validate_split([], labels, "train")


@pytest.mark.parametrize(
    "tag, problem",
    [
        ("B-", "has tag 'B-', which is not an IOB2 tag: expected 'O', 'B-<type>' or 'I-<type>'"),
        ("X-TRA", "has tag 'X-TRA', which is not an IOB2 tag"),
        ("PER", "has tag 'PER', which is not an IOB2 tag"),
        ("b-per", "has tag 'b-per': the prefix must be upper-case B- or I-; did you mean 'B-per'?"),
        ("i-PER", "has tag 'i-PER': the prefix must be upper-case B- or I-; did you mean 'I-PER'?"),
        ("o", "has tag 'o': wrong case; did you mean 'O'? tags are case-sensitive"),
    ],
)
def test_labels_from_tags_refuses_a_tag_that_is_not_iob2(tag, problem):
    where = "train.conll (split train), line 8"
    sentences = [sent(["a"], ["O"]), Sentence(["b", "c"], ["O", tag], where, lines=[8, 9])]
    with pytest.raises(DataError) as e:
        labels_from_tags(sentences)
    msg = str(e.value)
    assert msg.startswith(f"{where}: token 2 of 2 ('c') {problem}")
    assert msg.endswith(" (token on line 9)")


def test_labels_from_tags_suggests_the_tag_as_written_elsewhere():
    sentences = [sent(["a"], ["B-PER"]), sent(["b"], ["b-per"], where="x.jsonl, line 2")]
    with pytest.raises(DataError) as e:
        labels_from_tags(sentences)
    assert str(e.value) == (
        "x.jsonl, line 2: token 1 of 1 ('b') has tag 'b-per': the prefix must be upper-case B- or "
        "I-; did you mean 'B-PER'? tags are case-sensitive"
    )


def test_labels_from_tags_takes_any_type_but_only_upper_case_prefixes():
    assert labels_from_tags([sent(["a", "b"], ["B-per", "I-per"])]) == ["O", "B-per", "I-per"]
    with pytest.raises(DataError, match="prefix must be upper-case"):
        labels_from_tags([sent(["a", "b"], ["b-per", "I-per"])])


def test_labels_from_tags_checks_lengths_before_tags():
    with pytest.raises(DataError, match=re.escape(f"{WHERE}: 1 tokens but 2 tags")):
        labels_from_tags([sent(["a"], ["O", "b-x"])])


def test_parse_labels():
    assert parse_labels(["O", "B-PER", "I-PER"]) == {
        "O": ("O", None),
        "B-PER": ("B", "PER"),
        "I-PER": ("I", "PER"),
    }


def test_bad_on_error_value():
    with pytest.raises(UserError, match="on_error must be one of"):
        run([], on_error="ignore")


def test_check_label_sets():
    train = {"O", "B-PER", "I-PER", "B-LOC"}
    check_label_sets(train, {"validation": {"O", "B-PER"}, "test": set()})
    with pytest.raises(DataError, match=re.escape("split test: tags ['B-ORG', 'I-LOC'] never")):
        check_label_sets(train, {"validation": {"O"}, "test": {"O", "I-LOC", "B-ORG"}})


def test_entity_counts():
    sentences = [
        sent(["a", "b", "c"], ["B-PER", "I-PER", "B-LOC"]),
        sent(["d", "e"], ["B-PER", "O"]),
    ]
    assert entity_counts(sentences) == {"LOC": 1, "PER": 2}

"""The word splitter of ner-predict: WikiANN-like words with exact character offsets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.words import is_separator, split_words


def words(text: str) -> list[str]:
    out = split_words(text)
    for w, start, end in out:
        assert text[start:end] == w, (w, start, end)
    return [w for w, _, _ in out]


@pytest.mark.parametrize(
    "text, expected",
    [
        # Hebrew prefixes (ו ה ב ל מ ש כ) stay attached: the training data keeps them.
        ("והמשחק בירושלים לתל אביב מחיפה", ["והמשחק", "בירושלים", "לתל", "אביב", "מחיפה"]),
        ("כשהגיע שהוא", ["כשהגיע", "שהוא"]),
        # Punctuation is split off, a run of one character stays one word.
        ("שלום, עולם!", ["שלום", ",", "עולם", "!"]),
        ("(ירושלים) [א] {ב}", ["(", "ירושלים", ")", "[", "א", "]", "{", "ב", "}"]),
        ("רגע... ומה?!", ["רגע", "...", "ומה", "?", "!"]),
        ("''הארץ''", ["''", "הארץ", "''"]),
        ("ראו גם: ירושלים;", ["ראו", "גם", ":", "ירושלים", ";"]),
        # Geresh and gershayim inside Hebrew words; quotes around words are split off.
        ('צה״ל וצה"ל', ["צה״ל", 'וצה"ל']),
        ("ג׳ורג׳ וג'ורג' בושׁ", ["ג׳ורג׳", "וג'ורג'", "בושׁ"]),
        ("פרופ׳ כהן", ["פרופ׳", "כהן"]),
        ("באץ'-קישקון ג'ורג'.", ["באץ'-קישקון", "ג'ורג'", "."]),
        ("הוא אמר 'שלום' ו\"להתראות\"", ["הוא", "אמר", "'", "שלום", "'", "ו", '"', "להתראות", '"']),
        ('"צה"ל"', ['"', 'צה"ל', '"']),
        # After prefix letters a quote opens a quotation, unless an acronym ends one letter on.
        (
            'ו\'שלום\' ה"ארץ" ש"ס כ"ה מנכ"לים דו"חות',
            ["ו", "'", "שלום", "'", "ה", '"', "ארץ", '"', 'ש"ס', 'כ"ה', 'מנכ"לים', 'דו"חות'],
        ),
        ("״ציטוט״", ["״", "ציטוט", "״"]),
        # Apostrophes between Latin letters stay; quotes do not.
        ("O'Brien don't 'quoted'", ["O'Brien", "don't", "'", "quoted", "'"]),
        # Numbers keep decimals, thousands, scores and fractions; a final period is split off.
        ("3.5 1,000 2:1 1/2 2.5:1.5", ["3.5", "1,000", "2:1", "1/2", "2.5:1.5"]),
        ("בשנת 1948.", ["בשנת", "1948", "."]),
        ("כ-20 איש, 10%", ["כ-20", "איש", ",", "10", "%"]),
        # A hyphen or maqaf between word characters stays, as in WikiANN; elsewhere it is a word.
        ("דוד בן-גוריון - ב-2011 2-0", ["דוד", "בן-גוריון", "-", "ב-2011", "2-0"]),
        ("ו- ה־", ["ו", "-", "ה", "־"]),
        ("F-16 -5", ["F-16", "-", "5"]),
        # URLs and e-mail addresses are one word, without trailing punctuation.
        (
            "ראו https://he.wikipedia.org/wiki/X_(Y). או www.ynet.co.il,",
            ["ראו", "https://he.wikipedia.org/wiki/X_(Y)", ".", "או", "www.ynet.co.il", ","],
        ),
        (
            "(http://a.b/c) כתבו ל-a.b+c@mail.co.il.",
            ["(", "http://a.b/c", ")", "כתבו", "ל-a.b+c@mail.co.il", "."],
        ),
        # Mixed Hebrew and Latin, digits; niqqud stays inside words.
        ("ביקר ב-New York עם iPhone 15", ["ביקר", "ב-New", "York", "עם", "iPhone", "15"]),
        ("שָׁלוֹם 3D", ["שָׁלוֹם", "3D"]),
        # Direction marks separate words and belong to none; a zero-width joiner stays inside.
        ("\u200fשלום\u200f \u200eabc\u200e", ["שלום", "abc"]),
        ("a\u200db", ["a\u200db"]),
        ("", []),
        ("  \t ", []),
    ],
)
def test_split_words(text, expected):
    assert words(text) == expected


def test_offsets_index_the_original_string():
    text = "  משה כהן, גר בחיפה.\tJohn Smith  "
    assert split_words(text) == [
        ("משה", 2, 5),
        ("כהן", 6, 9),
        (",", 9, 10),
        ("גר", 11, 13),
        ("בחיפה", 14, 19),
        (".", 19, 20),
        ("John", 21, 25),
        ("Smith", 26, 31),
    ]


def test_demo_tokens_survive_a_round_trip():
    """Words joined by spaces split back into the same words (the model's training words)."""
    from ner.demo_data import generate_demo

    sentences = generate_demo()["validation"][:200]
    same = sum(words(" ".join(s["tokens"])) == s["tokens"] for s in sentences)
    assert same == len(sentences)


ALPHABET = st.sampled_from(
    list("אבגדהוזחטיכלמנסעפצקרשתךםןףץ")
    + list("abcXYZ0123456789")
    + list(" \t\n.,;:!?()[]{}\"'-/%@_״׳־")
    + ["\u05b8", "\u05bc", "\u200d", "\u200f", "\u00a0", "https://", "www.", "😀"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_words_cover_every_visible_character_once(text):
    out = split_words(text)
    pos = 0
    for w, start, end in out:
        assert w and text[start:end] == w
        assert start >= pos, "words overlap or go backwards"
        assert all(is_separator(c) for c in text[pos:start]), "a visible character was dropped"
        assert not any(is_separator(c) for c in w), "a separator inside a word"
        pos = end
    assert all(is_separator(c) for c in text[pos:])

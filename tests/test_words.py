"""The word splitter of ner-predict: WikiANN-like words with exact character offsets."""

from __future__ import annotations

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from ner.tools.words import is_mark, split_words

# Bidi marks (LRM, RLM, ALM, embeddings and overrides, isolates), zero-width space, word joiner,
# soft hyphen, BOM.
MARKS = (
    "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\u200b\u2060\u00ad\ufeff"
)


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
        # Direction marks at a word's edges belong to no word; a zero-width joiner stays inside.
        ("\u200fשלום\u200f \u200eabc\u200e", ["שלום", "abc"]),
        ("a\u200db", ["a\u200db"]),
        # Between a word's characters a direction or zero-width mark stays inside: the rules
        # split as if it were absent.
        (
            "ירושל\u200fים ב\u200f-2011 1\u200e,000",
            ["ירושל\u200fים", "ב\u200f-2011", "1\u200e,000"],
        ),
        ("\u202bדוד\u202c \u2067בן\u200b-גוריון\u2069.", ["דוד", "בן\u200b-גוריון", "."]),
        ("שלום\u200f, \ufeffעולם", ["שלום", ",", "עולם"]),
        ("..\u200f.", ["..\u200f."]),
        # An emoji is one symbol, so a word of its own; a run of the same one stays one word.
        ("🇮🇱", ["🇮🇱"]),
        ("שלום🇮🇱", ["שלום", "🇮🇱"]),
        ("👨\u200d👩\u200d👧", ["👨\u200d👩\u200d👧"]),
        ("🇮🇱🇮🇱 🇮🇱🇺🇸", ["🇮🇱🇮🇱", "🇮🇱", "🇺🇸"]),
        ("👍🏽👍🏿!!", ["👍🏽", "👍🏿", "!!"]),
        ("1️⃣2️⃣ #️⃣ ❤️ירושלים", ["1️⃣", "2️⃣", "#️⃣", "❤️", "ירושלים"]),
        # A letter keeps its combining marks even after a mark; a space carrying one is a space.
        ("e\u0301te\u0301 a\u200f\u0301b", ["e\u0301te\u0301", "a\u200f\u0301b"]),
        ("a \u0301b", ["a", "b"]),
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
    from ner.demo.generate import generate_demo

    sentences = generate_demo()["validation"][:200]
    same = sum(words(" ".join(s["tokens"])) == s["tokens"] for s in sentences)
    assert same == len(sentences)


def test_marks_at_the_edges_belong_to_no_word():
    assert split_words("\u200fשלום") == [("שלום", 1, 5)]
    assert split_words("\u2067ירושל\u200fים\u2069 🇮🇱") == [("ירושל\u200fים", 1, 9), ("🇮🇱", 11, 13)]


# Flags, a lone regional indicator, a ZWJ family, skin tones, keycaps, presentation selectors.
EMOJI = [
    "😀",
    "🇮🇱",
    "🇺🇸",
    "🇦",
    "👨\u200d👩\u200d👧",
    "👍🏽",
    "🏿",
    "1️⃣",
    "#️⃣",
    "❤️",
    "\u20e3",
    "\ufe0f",
]
ALPHABET = st.sampled_from(
    list("אבגדהוזחטיכלמנסעפצקרשתךםןףץ")
    + list("abcXYZ0123456789")
    + list(" \t\n\r.,;:!?()[]{}\"'-/%@_״׳־")
    + ["\u05b8", "\u05bc", "\u0301", "\u200d", "\u200c", "\u00a0", "\u0600", "https://", "www."]
    + EMOJI
    + list(MARKS)
)
TEXTS = st.lists(ALPHABET, max_size=40).map("".join)


CLUSTER = regex.compile(r"\X")


def clusters(text: str) -> list[tuple[int, int]]:
    """Extended grapheme clusters (UAX #29) of `text`, from `regex` directly."""
    return [m.span() for m in CLUSTER.finditer(text)]


@settings(max_examples=500, deadline=None)
@given(TEXTS)
def test_words_are_whole_clusters_and_cover_every_visible_one(text):
    out = split_words(text)
    spans = clusters(text)
    boundaries = {a for a, _ in spans} | {len(text)}
    pos = 0
    for w, start, end in out:
        assert w and text[start:end] == w
        assert start >= pos, "words overlap or go backwards"
        assert start in boundaries and end in boundaries, "a word boundary inside a cluster"
        assert not (w[0].isspace() or is_mark(w[0])), "a word starts with a blank"
        assert not (w[-1].isspace() or is_mark(w[-1])), "a word ends with a blank"
        assert not any(c.isspace() for c in w), "whitespace inside a word"
        pos = end
    covered = [False] * len(text)
    for _, start, end in out:
        covered[start:end] = [True] * (end - start)
    for a, b in spans:
        if not covered[a]:
            blank = is_mark(text[a:b]) or any(c.isspace() for c in text[a:b])
            assert blank, f"the visible cluster {text[a:b]!r} was dropped"


def is_plain_alnum(text: str, i: int) -> bool:
    """Does a letter or digit start at i, not as the base of an emoji (the keycap "1️⃣")?"""
    cluster = CLUSTER.match(text, i).group()
    return text[i].isalnum() and not set(cluster) & {"\ufe0f", "\u20e3"}


@settings(max_examples=500, deadline=None)
@given(TEXTS)
def test_a_mark_between_letters_never_separates_them(text):
    word_of = {}
    for k, (_, start, end) in enumerate(split_words(text)):
        word_of.update(dict.fromkeys(range(start, end), k))
    for m in regex.finditer(f"[{MARKS}]+", text):
        before, after = m.start() - 1, m.end()
        between_letters = before >= 0 and text[before].isalnum() and after < len(text)
        if between_letters and is_plain_alnum(text, after):
            assert word_of.get(before) is not None
            assert word_of.get(before) == word_of.get(after), (before, after)

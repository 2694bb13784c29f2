r"""Split raw text into words the way WikiANN's tokens look, keeping each word's character offsets.

The model was trained on pre-split words, so `ner-predict` must split text the same way:
- whitespace separates words;
- punctuation and symbols are words of their own; a run of one repeated character stays one word
  ("...", "''", "==", "**"), as in WikiANN, and so does a run of one repeated emoji (below);
- Hebrew prefixes (ו ה ב ל מ ש כ) stay attached: "בירושלים" is one word, as in the training data;
- a hyphen or maqaf between word characters stays inside ("בן-גוריון", "ב-2011", "2-0"), since
  WikiANN keeps such words whole; elsewhere it is a word of its own;
- geresh and gershayim stay inside Hebrew words: "צה״ל", "צה"ל", "ג׳ורג׳", "ג'ורג'", "פרופ׳";
  an apostrophe between letters stays too ("O'Brien"); a quote around a word is split off;
- numbers keep their separators between digits: "3.5", "1,000", "2:1", "1/2";
- URLs (http://, https://, www.) and e-mail addresses are one word, without trailing punctuation.

The rules read what a reader sees, grapheme clusters (Unicode UAX #29, the `regex` module's
`\X`), not code points, so no word starts or ends inside one:
- a letter with its points or accents is one letter;
- an emoji (a flag, a ZWJ family, a skin tone, a keycap "1️⃣") is one symbol, so a word of its
  own: "שלום🇮🇱" is "שלום" then "🇮🇱"; a run of the same emoji is one word like a run of "!"
  ("🇮🇱🇮🇱"), different ones are not ("🇮🇱🇺🇸" is two words, "👍🏽👍🏿" too);
- a space carrying a combining mark (" \u0301") is whitespace: the mark, on no letter, is
  dropped with it.

Invisible bidi and zero-width marks (LRM, RLM, ALM, embeddings, overrides, isolates, zero-width
space, word joiner, soft hyphen, BOM), which text copied from the web often carries, are
transparent: words are split as if they were absent; one between two characters of a word stays
inside it ("ירושל\u200fים" is one word), the others (next to whitespace, punctuation or the
line's ends) belong to no word.

Offsets are Python string indices into the original text (logical order: Hebrew is never
reversed), so `text[start:end] == word` for every word.
"""

from __future__ import annotations

import unicodedata

import regex  # the standard `re` has no grapheme clusters (\X) and its \w omits marks

# Invisible marks, transparent to the rules (see the module docstring). Each is a grapheme
# cluster of its own (UAX #29 class Control), so dropping one never cuts a cluster. ZWJ and ZWNJ
# are not here: they shape the letters around them and cling to the cluster before them.
_MARKS = frozenset(
    "\u200b\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
    "\u2060\u00ad"  # word joiner, soft hyphen
)
_EMOJI_PARTS = frozenset("\ufe0f\u20e3")  # emoji presentation selector, keycap
_EMOJI = "\ufffc"  # a symbol, the key of every cluster with an emoji part, even "1️⃣" (see _key)
_CLUSTER = regex.compile(r"\X")
_JOINERS = frozenset("\u200c\u200d")  # zero-width non-joiner / joiner: part of a word
_HYPHENS = frozenset("-\u05be")  # hyphen-minus, Hebrew maqaf
_GERESH = frozenset("'\u05f3\u2019")  # apostrophe, Hebrew geresh, right single quotation mark
_GERSHAYIM = frozenset('"\u05f4')  # quotation mark, Hebrew gershayim
_NUMBER_INNER = frozenset(".,:/")  # between digits: decimals, thousands, scores, fractions
_PREFIXES = frozenset("והבלמשכ")  # one-letter Hebrew prefixes, kept attached to their word

_URL = regex.compile(r"(?:https?://|www\.)[^\s<>\"]+")
_EMAIL = regex.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL_TRAILING = ".,;:!?'\"\u05f3\u05f4)]}"


def is_mark(c: str) -> bool:
    """An invisible bidi or zero-width mark: transparent to the rules, in no word at its edges."""
    return c in _MARKS


def is_word_char(c: str) -> bool:
    """Letters, digits and combining marks (Hebrew points, accents) of any script."""
    return c.isalnum() or c == "_" or c in _JOINERS or unicodedata.category(c).startswith("M")


def is_hebrew_letter(c: str) -> bool:
    """A Hebrew letter or point (U+0591-U+05F2, presentation forms U+FB1D-U+FB4F)."""
    if not ("\u0591" <= c <= "\u05f2" or "\ufb1d" <= c <= "\ufb4f"):
        return False
    return unicodedata.category(c)[0] in "LM"


def _is_letter(c: str) -> bool:
    return c.isalpha() or unicodedata.category(c).startswith("M")


def _joins(text: str, start: int, j: int) -> bool:
    """Does text[j], inside the word that began at `start`, join its neighbours into one word?"""
    prev, c, nxt = text[j - 1], text[j], text[j + 1]
    if not is_word_char(nxt):
        return False
    if c in _HYPHENS:
        return True
    if c in _NUMBER_INNER:
        return prev.isdigit() and nxt.isdigit()
    if c not in _GERESH and c not in _GERSHAYIM:
        return False
    if not (is_hebrew_letter(prev) and is_hebrew_letter(nxt)):
        return c in _GERESH and _is_letter(prev) and _is_letter(nxt)  # O'Brien, don't
    # After prefix letters only, a quote usually opens a quotation (ו"להתראות", ה'ארץ'), but
    # an acronym ends one letter after its gershayim (ש"ס, כ"ה): keep those.
    return not set(text[start:j]) <= _PREFIXES or _one_letter_left(text, j + 1)


def _one_letter_left(text: str, i: int) -> bool:
    """Is text[i] the last letter of its word (followed only by points)?"""
    i += 1
    while i < len(text) and unicodedata.category(text[i]).startswith("M"):
        i += 1
    return i == len(text) or not is_word_char(text[i])


def _final_geresh(text: str, start: int, i: int) -> bool:
    """Is text[i], right after the Hebrew word text[start:i], a geresh that belongs to it?

    The Hebrew geresh (U+05F3) always does ("פרופ׳", "ג׳ורג׳"). An ASCII apostrophe does too
    ("ג'ורג'"), unless an apostrophe right before the word opened a quotation ('שלום',
    ו'שלום': `_joins` leaves a quote after prefix letters outside the word).
    """
    if text[i] not in _GERESH or not is_hebrew_letter(text[i - 1]):
        return False
    if i + 1 < len(text) and is_word_char(text[i + 1]):
        return False  # not final: `_joins` chose to split here
    if text[i] == "\u05f3":
        return True
    return start == 0 or text[start - 1] not in _GERESH


def _url_end(text: str, i: int) -> int | None:
    """End of the URL or e-mail address starting at i, without trailing punctuation."""
    # Neither holds a space (every whitespace key is " "): stopping the match there keeps
    # `regex` from scanning the rest of the line for "@" at every word.
    stop = text.find(" ", i)
    stop = len(text) if stop < 0 else stop
    m = _URL.match(text, i, stop) or _EMAIL.match(text, i, stop)
    if m is None:
        return None
    end = m.end()
    while end > i + 1 and text[end - 1] in _URL_TRAILING:
        # A closing parenthesis stays when it closes one of the URL's own (Wikipedia links).
        if text[end - 1] == ")" and text.count("(", i, end) >= text.count(")", i, end):
            break
        end -= 1
    return end


def _clusters(text: str) -> list[tuple[int, int]]:
    """(start, end) of each grapheme cluster of `text` that is not an invisible mark."""
    return [m.span() for m in _CLUSTER.finditer(text) if not is_mark(m.group())]


def _key(cluster: str) -> str:
    """The character that stands for a grapheme cluster in the rules: its base character.

    A cluster with whitespace in it is whitespace (CR LF, a space carrying an accent); an emoji
    is a symbol even when it starts with a digit (the keycap "1️⃣"); a prepended format
    character (the Arabic number sign U+0600) gives way to the character it is written on.
    """
    if any(c.isspace() for c in cluster):
        return " "
    if not _EMOJI_PARTS.isdisjoint(cluster):
        return _EMOJI
    return next((c for c in cluster if unicodedata.category(c) != "Cf"), cluster[0])


def _spans(keys: str, units: list[str]) -> list[tuple[int, int]]:
    """[i, j) ranges of the words in `units`, the clusters, given their `keys`.

    The rules (and the helpers above) read one key character per cluster, so they look past
    points and accents, and never stop inside an emoji; only a run compares whole clusters.
    """
    out: list[tuple[int, int]] = []
    i, n = 0, len(keys)
    while i < n:
        c = keys[i]
        if c.isspace():
            i += 1
            continue
        j = _url_end(keys, i) if i == 0 or not is_word_char(keys[i - 1]) else None
        if j is None and is_word_char(c):
            j = i + 1
            while j < n:
                if is_word_char(keys[j]):
                    j += 1
                elif j + 1 < n and _joins(keys, i, j):
                    j += 2
                elif _final_geresh(keys, i, j):
                    j += 1  # a hyphen may still follow: באץ'-קישקון
                else:
                    break
        elif j is None:  # punctuation or a symbol: a run of the same cluster is one word
            j = i + 1
            while j < n and units[j] == units[i]:
                j += 1
        out.append((i, j))
        i = j
    return out


def split_words(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for every word of `text`, with `text[start:end] == word`."""
    spans = _clusters(text)
    units = [text[a:b] for a, b in spans]
    out = []
    for i, j in _spans("".join(_key(u) for u in units), units):
        start, end = spans[i][0], spans[j - 1][1]  # marks inside the word stay in it
        out.append((text[start:end], start, end))
    return out

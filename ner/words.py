"""Split raw text into words the way WikiANN's tokens look, keeping each word's character offsets.

The model was trained on pre-split words, so `ner-predict` must split text the same way:
- whitespace separates words; so do invisible direction marks (LRM, RLM, embeddings, isolates,
  zero-width space, BOM), which Hebrew text copied from the web often carries;
- punctuation and symbols are words of their own; a run of one repeated character stays one word
  ("...", "''", "==", "**"), as in WikiANN;
- Hebrew prefixes (ו ה ב ל מ ש כ) stay attached: "בירושלים" is one word, as in the training data;
- a hyphen or maqaf between word characters stays inside ("בן-גוריון", "ב-2011", "2-0"), since
  WikiANN keeps such words whole; elsewhere it is a word of its own;
- geresh and gershayim stay inside Hebrew words: "צה״ל", "צה"ל", "ג׳ורג׳", "ג'ורג'", "פרופ׳";
  an apostrophe between letters stays too ("O'Brien"); a quote around a word is split off;
- numbers keep their separators between digits: "3.5", "1,000", "2:1", "1/2";
- URLs (http://, https://, www.) and e-mail addresses are one word, without trailing punctuation.

Offsets are Python string indices into the original text (logical order: Hebrew is never
reversed), so `text[start:end] == word` for every word.
"""

from __future__ import annotations

import re
import unicodedata

# Invisible characters that separate words and never belong to one (ZWJ/ZWNJ are kept: they
# shape the letters around them).
_INVISIBLE_SEPARATORS = frozenset(
    "\u200b\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)
_JOINERS = frozenset("\u200c\u200d")  # zero-width non-joiner / joiner: part of a word
_HYPHENS = frozenset("-\u05be")  # hyphen-minus, Hebrew maqaf
_GERESH = frozenset("'\u05f3\u2019")  # apostrophe, Hebrew geresh, right single quotation mark
_GERSHAYIM = frozenset('"\u05f4')  # quotation mark, Hebrew gershayim
_NUMBER_INNER = frozenset(".,:/")  # between digits: decimals, thousands, scores, fractions
_PREFIXES = frozenset("והבלמשכ")  # one-letter Hebrew prefixes, kept attached to their word

_URL = re.compile(r"(?:https?://|www\.)[^\s\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff<>\"]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL_TRAILING = ".,;:!?'\"\u05f3\u05f4)]}"


def is_separator(c: str) -> bool:
    return c.isspace() or c in _INVISIBLE_SEPARATORS


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
    m = _URL.match(text, i) or _EMAIL.match(text, i)
    if m is None:
        return None
    end = m.end()
    while end > i + 1 and text[end - 1] in _URL_TRAILING:
        # A closing parenthesis stays when it closes one of the URL's own (Wikipedia links).
        if text[end - 1] == ")" and text.count("(", i, end) >= text.count(")", i, end):
            break
        end -= 1
    return end


def split_words(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for every word of `text`, with `text[start:end] == word`."""
    out: list[tuple[str, int, int]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if is_separator(c):
            i += 1
            continue
        j = _url_end(text, i) if i == 0 or not is_word_char(text[i - 1]) else None
        if j is None and is_word_char(c):
            j = i + 1
            while j < n:
                if is_word_char(text[j]):
                    j += 1
                elif j + 1 < n and _joins(text, i, j):
                    j += 2
                elif _final_geresh(text, i, j):
                    j += 1  # a hyphen may still follow: באץ'-קישקון
                else:
                    break
        elif j is None:  # punctuation or a symbol: a run of the same character is one word
            j = i + 1
            while j < n and text[j] == c:
                j += 1
        out.append((text[i:j], i, j))
        i = j
    return out

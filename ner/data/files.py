"""Read local NER files (JSON lines or CoNLL) into `Sentence`s, with errors that point at a line.

Only the file format is checked here; what the tags mean (known labels, IOB2, empty tokens) is
checked by `ner.data.checks`, the same way for local files and hub datasets.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ner.data.sentences import Sentence
from ner.errors import DataError

JSONL_SUFFIXES = (".jsonl", ".json")
CONLL_SUFFIXES = (".conll", ".txt", ".tsv", ".iob")
_BOM = b"\xef\xbb\xbf"
# Split on ASCII blanks only: NBSP, zero-width joiners and bidi marks can sit inside a token
# (Hebrew text often has them), and str.split() would cut the token at an NBSP.
_SPACES = re.compile(r"[ \t]+")


def read_sentences(path: str | os.PathLike, split: str) -> list[Sentence]:
    """Read one split from a .jsonl/.json (JSON lines) or .conll/.txt/.tsv/.iob (CoNLL) file."""
    place = f"{os.fspath(path)} (split {split})"
    suffix = Path(path).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        parse = _parse_jsonl
    elif suffix in CONLL_SUFFIXES:
        parse = _parse_conll
    else:
        known = ", ".join(JSONL_SUFFIXES + CONLL_SUFFIXES)
        raise DataError(
            f"{place}: unknown file type {suffix or '(no suffix)'!r}; use one of {known}"
        )
    sentences = parse(_read_lines(path, place), place)
    if not sentences:
        raise DataError(f"{place}: no sentences found ({_EXPECTED[parse]})")
    return sentences


def _read_lines(path: str | os.PathLike, place: str) -> list[str]:
    """The file's lines, decoded as strict UTF-8 (a leading BOM is allowed), without line ends."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{place}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{place}: is a directory, expected a file") from None
    text = decode_utf8(data, place)
    # Split on "\n" only (not str.splitlines) so line numbers match what editors and grep show.
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def decode_utf8(data: bytes, place: str, first_line: int = 1) -> str:
    """Strict UTF-8, the one rule for every input read (files here, ner-predict's --file and
    stdin): a leading BOM is dropped from a file's start (`first_line` 1); a byte that is not
    UTF-8 is a DataError naming the line (and, in a whole file, the byte offset)."""
    start = len(_BOM) if first_line == 1 and data.startswith(_BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = start + e.start
        line = first_line + data.count(b"\n", 0, offset)
        at = f" at byte offset {offset}" if first_line == 1 else ""
        raise DataError(
            f"{place}, line {line}: byte 0x{data[offset]:02X}{at} is not valid UTF-8; convert "
            "the file to UTF-8 (e.g. `iconv -f WINDOWS-1255 -t UTF-8` for Hebrew saved by older "
            "Windows tools)"
        ) from None


def _parse_conll(lines: list[str], place: str) -> list[Sentence]:
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    numbers: list[int] = []  # the line of each token
    # separator -> (field count, line it was first seen on). Every line has as many fields as the
    # file's first line with the same separator, so a stray column cannot pass for the tag. Keyed
    # by separator since 'token<TAB>tag' lines and CoNLL-2003 space-separated lines may mix.
    columns: dict[str, tuple[int, int]] = {}

    def flush() -> None:
        if tokens:
            where = f"{place}, line {numbers[0]}"
            sentences.append(Sentence(list(tokens), list(tags), where, list(numbers)))
            for part in (tokens, tags, numbers):
                part.clear()

    for number, line in enumerate(lines, start=1):
        if not line.strip(" \t") or line.startswith("-DOCSTART-"):
            flush()
            continue
        separator, fields = _split_fields(line)
        if len(fields) < 2:
            raise DataError(
                f"{place}, line {number}: expected 'token<TAB>tag', got 1 field: {line!r}"
            )
        expected, first = columns.setdefault(separator, (len(fields), number))
        if len(fields) != expected:
            raise DataError(
                f"{place}, line {number}: {len(fields)} fields, expected {expected} as on line "
                f"{first} (the first {separator}-separated line); every line needs the same "
                f"columns, token first and tag last: {line!r}"
            )
        tokens.append(fields[0])
        tags.append(fields[-1])
        numbers.append(number)
    flush()
    return sentences


def _split_fields(line: str) -> tuple[str, list[str]]:
    """("tab", fields) or ("space", fields) of one token line.

    With a tab, fields are tab-separated (a token may then hold spaces); otherwise
    space-separated as in CoNLL-2003. Token is the first field, tag the last.
    """
    if "\t" not in line:
        return "space", _SPACES.split(line.strip(" "))
    fields = [f.strip(" ") for f in line.split("\t")]
    while len(fields) > 1 and not fields[-1]:
        fields.pop()  # trailing tabs
    return "tab", fields


def _parse_jsonl(lines: list[str], place: str) -> list[Sentence]:
    sentences: list[Sentence] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        here = f"{place}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            hint = ""
            if line.lstrip().startswith("["):
                hint = "; expected JSON lines (one object per line), not a JSON array"
            raise DataError(f"{here}: invalid JSON ({e.msg} at column {e.colno}){hint}") from None
        if not isinstance(record, dict):
            raise DataError(
                f"{here}: expected an object with 'tokens' and 'ner_tags', "
                f"got {type(record).__name__}"
            )
        tokens = _string_list(record, "tokens", here)
        tags = _string_list(record, "ner_tags", here)
        sentences.append(Sentence(tokens, tags, here))
    return sentences


def _string_list(record: dict, key: str, here: str) -> list[str]:
    if key not in record:
        raise DataError(f"{here}: missing key {key!r} (found keys: {sorted(record)})")
    value = record[key]
    if not isinstance(value, list):
        raise DataError(f"{here}: {key!r} must be a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if isinstance(item, str):
            continue
        if key == "ner_tags" and isinstance(item, int) and not isinstance(item, bool):
            raise DataError(
                f"{here}: 'ner_tags' holds integer ids (ner_tags[{i}] = {item}); JSON-lines "
                "files need tag names such as 'B-PER', since ids mean nothing without the "
                "dataset's label list"
            )
        raise DataError(
            f"{here}: {key}[{i}] is {type(item).__name__} ({item!r}), expected a string"
        )
    return value


_EXPECTED = {
    _parse_conll: "expected CoNLL: one 'token<TAB>tag' per line, a blank line between sentences",
    _parse_jsonl: 'expected JSON lines: {"tokens": [...], "ner_tags": [...]} per line',
}

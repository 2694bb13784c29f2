"""A generated WikiANN-shaped NER dataset in Hebrew or Arabic: the demo and the tests need nothing
from outside.

Sentences come from templates with typed slots ({PER}, {CITY}, {CLUB}, ...) filled from small
gazetteers, plus WikiANN-like short fragments ("ראו גם : ירושלים", a lone entity name) and
sentences without entities. Tags are the WikiANN set in IOB2 (`ner.LABELS_WIKIANN`). Each
language's word lists live in their own module (ner/demo/hebrew.py, ner/demo/arabic.py, the same
names in each); this module draws from them the same way for every language. About half of the
Arabic entities are the Hebrew ones transliterated, so a model trained on both can share them.

Train persons come from a fixed pool of first+last combinations; validation and test also use
unseen combinations of the same first and last names, so a model must generalise beyond
memorising full names while staying learnable by a tiny model trained from scratch.

Everything is deterministic: each (language, seed, split) seeds its own `random.Random` through
SHA-256 (Python's `hash()` of strings is salted per process, so it would not do). The Hebrew set
is the one this module generated when it was Hebrew-only, byte for byte.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from types import ModuleType

from ner.demo import arabic, hebrew
from ner.errors import UserError

DEMO_SPLIT_SIZES: dict[str, int] = {"train": 2000, "validation": 400, "test": 400}

# Language code -> its word-list module; Hebrew, the default, first.
_WORD_LISTS = {"he": hebrew, "ar": arabic}
DEMO_LANGUAGES: tuple[str, ...] = tuple(_WORD_LISTS)

# Slot types by WikiANN entity type; a "{LOC}" or "{ORG}" slot draws from all of its types.
_SLOT_TYPES = {
    "LOC": ("CITY", "COUNTRY", "REGION"),
    "ORG": ("CLUB", "PARTY", "UNI", "COMPANY", "PAPER"),
}
_ENTITY_TYPE = {"PER": "PER", "ORG": "ORG", "LOC": "LOC"}
_ENTITY_TYPE.update({kind: entity for entity, kinds in _SLOT_TYPES.items() for kind in kinds})
_NUMBER_RANGES = {"YEAR": (1900, 2023), "NUM": (2, 99), "GOALS": (0, 5)}

# Template syntax: tokens separated by single spaces; "{SLOT}" is an entity slot (a key of
# _ENTITY_TYPE) or a number (a key of _NUMBER_RANGES); "m^f" is a word inflected by the grammatical
# gender of the sentence's first person.

# Shares of templates / fragments / entity-free sentences: gives ~8 tokens per sentence on average.
_KIND_WEIGHTS = (0.6, 0.28, 0.12)

# Train persons: a fixed pool of first+last combinations (the same for every seed, like a fixed
# world). Validation and test draw this share of full names from all combinations instead.
_PERSON_POOL_SIZE = 50
_UNSEEN_COMBINATION_RATE = 0.35
# Share of person mentions by surname only (one B-PER token), as in encyclopaedic text.
_SURNAME_ONLY_RATE = 0.1


@dataclass(frozen=True)
class _Language:
    """One language's word lists, ready to draw from."""

    first_names: dict[str, list[str]]  # by gender, "m" then "f"
    last_names: list[str]
    gazetteer: dict[str, list[str]]  # by slot type, plus the unions "LOC" and "ORG"
    parsed: tuple[list[list[tuple[str, str]]], ...]  # templates, fragments, entity-free
    pool_by_gender: dict[str, list[tuple[str, str, str]]]  # train persons


def _rng(seed: int, split: str, language: str) -> random.Random:
    """A generator seeded from (language, seed, split) the same way in every process.

    Hebrew keeps the seed string it had before there were other languages, so its data is unchanged.
    """
    key = f"{seed}:{split}" if language == "he" else f"{language}:{seed}:{split}"
    digest = hashlib.sha256(f"ner-demo-data:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _person_pool(
    code: str, first_names: dict[str, list[str]], last_names: list[str]
) -> list[tuple[str, str, str]]:
    """(gender, first, last) combinations seen in training.

    Built from rounds of shuffled first-to-last pairings, so every first and every last name is
    in the pool: evaluation holds out combinations, never a name itself.
    """
    rng = _rng(0, "person-pool", code)
    firsts = [(g, f) for g, names in first_names.items() for f in names]
    pool: list[tuple[str, str, str]] = []
    while len(pool) < _PERSON_POOL_SIZE:
        lasts = rng.sample(last_names, len(last_names))
        for (g, first), last in zip(firsts, lasts, strict=True):
            if (g, first, last) not in pool and len(pool) < _PERSON_POOL_SIZE:
                pool.append((g, first, last))
    return pool


def _parse(template: str) -> list[tuple[str, str]]:
    """Template -> [(kind, value)] with kind "slot", "gendered" (value "m^f") or "word"."""
    parsed = []
    for token in template.split(" "):
        if token.startswith("{") and token.endswith("}"):
            slot = token[1:-1]
            assert slot in _ENTITY_TYPE or slot in _NUMBER_RANGES, f"{template!r}: slot {slot!r}"
            parsed.append(("slot", slot))
        elif "^" in token:
            parsed.append(("gendered", token))
        else:
            parsed.append(("word", token))
    return parsed


def _prepare(code: str, lists: ModuleType) -> _Language:
    """A language from its word-list module (FIRST_NAMES, LAST_NAMES, GAZETTEER, TEMPLATES, ...)."""
    kinds = {kind for kinds in _SLOT_TYPES.values() for kind in kinds}
    assert set(lists.GAZETTEER) == kinds, f"{code}: gazetteer slot types {sorted(lists.GAZETTEER)}"
    assert list(lists.FIRST_NAMES) == ["m", "f"], f"{code}: first names by gender, 'm' then 'f'"
    gazetteer = dict(lists.GAZETTEER)
    for entity, kinds_of_entity in _SLOT_TYPES.items():
        gazetteer[entity] = [name for kind in kinds_of_entity for name in lists.GAZETTEER[kind]]
    pool = _person_pool(code, lists.FIRST_NAMES, lists.LAST_NAMES)
    return _Language(
        first_names=lists.FIRST_NAMES,
        last_names=lists.LAST_NAMES,
        gazetteer=gazetteer,
        parsed=tuple(
            [_parse(t) for t in group]
            for group in (lists.TEMPLATES, lists.FRAGMENTS, lists.NO_ENTITY)
        ),
        pool_by_gender={g: [p for p in pool if p[0] == g] for g in lists.FIRST_NAMES},
    )


_LANGUAGES = {code: _prepare(code, lists) for code, lists in _WORD_LISTS.items()}


def _person(rng: random.Random, lang: _Language, gender: str, unseen_ok: bool) -> list[str]:
    if rng.random() < _SURNAME_ONLY_RATE:
        return rng.choice(lang.last_names).split(" ")
    if unseen_ok and rng.random() < _UNSEEN_COMBINATION_RATE:
        first, last = rng.choice(lang.first_names[gender]), rng.choice(lang.last_names)
    else:
        _, first, last = rng.choice(lang.pool_by_gender[gender])
    return [first, *last.split(" ")]


def _sentence(
    rng: random.Random, lang: _Language, parsed: list[tuple[str, str]], unseen_ok: bool
) -> dict:
    gender = rng.choice(("m", "f"))  # the first person's; later persons get their own
    first_person = True
    used: set[str] = set()  # "Maccabi beat Maccabi" would be nonsense: no entity twice
    tokens: list[str] = []
    tags: list[str] = []
    for kind, value in parsed:
        if kind == "word":
            tokens.append(value)
            tags.append("O")
        elif kind == "gendered":
            tokens.append(value.split("^")[0 if gender == "m" else 1])
            tags.append("O")
        elif value in _NUMBER_RANGES:
            low, high = _NUMBER_RANGES[value]
            tokens.append(str(rng.randint(low, high)))
            tags.append("O")
        else:
            if value == "PER":
                g = gender if first_person else rng.choice(("m", "f"))
            while True:
                if value == "PER":
                    words = _person(rng, lang, g, unseen_ok)
                else:
                    words = rng.choice(lang.gazetteer[value]).split(" ")
                if " ".join(words) not in used:
                    break
            if value == "PER":
                first_person = False
            used.add(" ".join(words))
            entity = _ENTITY_TYPE[value]
            tokens.extend(words)
            tags.extend([f"B-{entity}"] + [f"I-{entity}"] * (len(words) - 1))
    return {"tokens": tokens, "ner_tags": tags}


def _language(language: str) -> _Language:
    if language not in _LANGUAGES:
        raise UserError(
            f"demo data: unknown language {language!r}; expected one of {list(DEMO_LANGUAGES)}"
        )
    return _LANGUAGES[language]


def generate_split(
    split: str, n: int | None = None, seed: int = 0, language: str = "he"
) -> list[dict]:
    """Return n sentences as {"tokens": list[str], "ner_tags": list[str]} (tag names).

    `split` is one of DEMO_SPLIT_SIZES ("train", "validation", "test"); n defaults to its size
    there. `language` is one of DEMO_LANGUAGES. The same (split, n, seed, language) gives the
    same sentences in any process, and the first k sentences do not depend on n.
    """
    lang = _language(language)
    if split not in DEMO_SPLIT_SIZES:
        raise UserError(
            f"demo data: unknown split {split!r}; expected one of {sorted(DEMO_SPLIT_SIZES)}"
        )
    if n is None:
        n = DEMO_SPLIT_SIZES[split]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise UserError(f"demo data, split {split!r}: size must be an integer >= 0, got {n!r}")
    rng = _rng(seed, split, language)
    unseen_ok = split != "train"
    sentences = []
    for _ in range(n):
        group = rng.choices(lang.parsed, weights=_KIND_WEIGHTS)[0]
        sentences.append(_sentence(rng, lang, rng.choice(group), unseen_ok))
    return sentences


def generate_demo(
    seed: int = 0, sizes: dict[str, int] | None = None, language: str = "he"
) -> dict[str, list[dict]]:
    """All three splits of one language; `sizes` overrides some or all of DEMO_SPLIT_SIZES."""
    _language(language)
    sizes = sizes or {}
    unknown = sorted(set(sizes) - set(DEMO_SPLIT_SIZES))
    if unknown:
        raise UserError(
            f"demo data: unknown split(s) {unknown} in sizes; expected {sorted(DEMO_SPLIT_SIZES)}"
        )
    return {
        split: generate_split(split, sizes.get(split, default), seed, language)
        for split, default in DEMO_SPLIT_SIZES.items()
    }

"""A generated WikiANN-shaped Hebrew NER dataset: the demo and the tests need nothing from outside.

Sentences come from templates with typed slots ({PER}, {CITY}, {CLUB}, ...) filled from small
gazetteers written below, plus WikiANN-like short fragments ("ראו גם : ירושלים", a lone entity
name) and sentences without entities. Tags are the WikiANN set in IOB2 (`ner.LABELS_WIKIANN`).

Context matters a little: "תל אביב" is a location alone but part of an organisation in
"מכבי תל אביב"; "דוד" is a first name but also part of the surname "בן דוד". Train persons come
from a fixed pool of first+last combinations; validation and test also use unseen combinations
of the same first and last names, so a model must generalise beyond memorising full names while
staying learnable by a tiny model trained from scratch.

Everything is deterministic: each (seed, split) seeds its own `random.Random` through SHA-256
(Python's `hash()` of strings is salted per process, so it would not do).
"""

from __future__ import annotations

import hashlib
import random

from ner.errors import UserError

DEMO_SPLIT_SIZES: dict[str, int] = {"train": 2000, "validation": 400, "test": 400}

# First names by grammatical gender: Hebrew verbs and adjectives agree with the person.
_FIRST_NAMES = {
    "m": ["דוד", "משה", "יוסף", "אברהם", "יצחק", "יונתן", "עמית", "אבי", "איתן", "דניאל"],
    "f": ["שרה", "רחל", "מיכל", "נועה", "תמר", "יעל", "אורית", "שירה", "רותם", "הדס"],
}
# Two-word surnames ("בן דוד") give three-token persons: B-PER I-PER I-PER.
_LAST_NAMES = [
    "כהן", "לוי", "מזרחי", "פרץ", "ביטון", "דהן", "פרידמן", "שפירא", "גולדברג", "אזולאי",
    "רוזנברג", "בן דוד", "אוחיון", "חדד", "ברק", "שטרן", "קפלן", "גבאי", "בן עמי", "וייס",
]  # fmt: skip

# Entity gazetteers by slot type; each slot type maps to one WikiANN entity type below.
_GAZETTEER: dict[str, list[str]] = {
    "CITY": [
        "ירושלים", "תל אביב", "חיפה", "באר שבע", "אילת", "נתניה", "חולון", "רמת גן",
        "ראשון לציון", "פתח תקווה", "טבריה", "נצרת", "עכו", "צפת", "ניו יורק", "לונדון",
        "פריז", "ברלין",
    ],
    "COUNTRY": [
        "ישראל", "מצרים", "ירדן", "צרפת", "גרמניה", "איטליה", "ספרד", "רוסיה", "ארצות הברית",
        "בריטניה", "יפן",
    ],
    "REGION": ["הגליל", "הנגב", "רמת הגולן", "עמק יזרעאל", "השרון", "ים המלח"],
    "CLUB": [
        "מכבי תל אביב", "הפועל ירושלים", "הפועל באר שבע", "בית\"ר ירושלים", "מכבי חיפה",
        "בני סכנין",
    ],
    "PARTY": ["הליכוד", "מפלגת העבודה", "יש עתיד", "מרצ", "ש\"ס"],
    "UNI": [
        "האוניברסיטה העברית", "אוניברסיטת תל אביב", "הטכניון", "אוניברסיטת בן-גוריון",
        "מכון ויצמן",
    ],
    "COMPANY": ["בנק הפועלים", "בנק לאומי", "אל על", "טבע", "אינטל", "גוגל", "מיקרוסופט"],
    "PAPER": ["ידיעות אחרונות", "הארץ", "מעריב"],
}  # fmt: skip
_GAZETTEER["LOC"] = _GAZETTEER["CITY"] + _GAZETTEER["COUNTRY"] + _GAZETTEER["REGION"]
_GAZETTEER["ORG"] = [
    name for kind in ("CLUB", "PARTY", "UNI", "COMPANY", "PAPER") for name in _GAZETTEER[kind]
]
_ENTITY_TYPE = {"PER": "PER", "ORG": "ORG", "LOC": "LOC"}
_ENTITY_TYPE.update({k: "LOC" for k in ("CITY", "COUNTRY", "REGION")})
_ENTITY_TYPE.update({k: "ORG" for k in ("CLUB", "PARTY", "UNI", "COMPANY", "PAPER")})

# Template syntax: tokens separated by single spaces; "{SLOT}" is an entity slot or a number
# ({YEAR}, {NUM}, {GOALS}); "זכר^נקבה" is a word inflected by the gender of the sentence's first
# person. Prepositions are written as separate words ("בעיר {CITY}") so entity tokens stay the
# gazetteer's tokens.
_TEMPLATES = [
    "{PER} נולד^נולדה בשנת {YEAR} בעיר {CITY} .",
    "{PER} הוא^היא פוליטיקאי^פוליטיקאית ישראלי^ישראלית , חבר^חברת כנסת מטעם {PARTY} .",
    "{PER} שיחק^שיחקה בקבוצת {CLUB} בשנים {YEAR} - {YEAR} .",
    "{CITY} היא עיר באזור {REGION} .",
    "{PER} , בוגר^בוגרת {UNI} , מתגורר^מתגוררת כיום בעיר {CITY} .",
    "החברה {COMPANY} פתחה סניף חדש בעיר {CITY} .",
    "{COMPANY} היא חברה שמרכזה בעיר {CITY} .",
    "בשנת {YEAR} עבר^עברה {PER} להתגורר בעיר {CITY} .",
    "{PER} נפגש^נפגשה עם {PER} בעיר {CITY} .",
    "{CLUB} ניצחה את {CLUB} בתוצאה {GOALS} : {GOALS} .",
    "המשחק בין {CLUB} לבין {CLUB} נערך באצטדיון העירוני .",
    "{PER} מונה^מונתה לנשיא^לנשיאת {UNI} בשנת {YEAR} .",
    "{PER} ( {YEAR} - {YEAR} ) היה^הייתה סופר^סופרת ומשורר^ומשוררת .",
    "יש גבול משותף בין {COUNTRY} לבין {COUNTRY} .",
    "{PER} , יושב^יושבת ראש {PARTY} , הודיע^הודיעה על פרישתו^פרישתה .",
    "לפי הנתונים , מספר התושבים בעיר {CITY} עומד על {NUM} אלף .",
    "הכנס השנתי של {UNI} נערך השנה בעיר {CITY} .",
    "{PER} חתם^חתמה על חוזה חדש עם {CLUB} עד שנת {YEAR} .",
    "{COMPANY} רכשה את {COMPANY} תמורת {NUM} מיליון דולר .",
    "טיסות ישירות בין {CITY} לבין {CITY} יחלו בחודש הבא .",
    "{PER} כיהן^כיהנה כשגריר^כשגרירת {COUNTRY} בעיר {CITY} .",
    "המוזיאון הלאומי נמצא במרכז העיר {CITY} .",
    "{REGION} הוא אזור גאוגרפי בצפון {COUNTRY} .",
    "תושבי {CITY} יצאו להפגין נגד החלטת {ORG} .",
    "{PER} פרסם^פרסמה מאמר בעיתון {PAPER} .",
    "מטה {COMPANY} נמצא בעיר {CITY} , ליד {CITY} .",
    "{PER} זכה^זכתה בפרס על ספרו^ספרה הראשון בשנת {YEAR} .",
    "{PER} ביקר^ביקרה בשבוע שעבר בעיר {CITY} ונפגש^ונפגשה עם ראש העירייה .",
    "{CLUB} זכתה באליפות בעונת {YEAR} .",
    "ראש הממשלה נפגש עם {PER} , שר החוץ של {COUNTRY} .",
    "לדברי {PER} , {ORG} תפעל גם באזור {REGION} .",
    "התפקיד מגולם על ידי השחקן^השחקנית {PER} .",
    "{PER} הקים^הקימה את {COMPANY} יחד עם {PER} בשנת {YEAR} .",
]
# WikiANN sentences are often title-like fragments: a lone name, "see also", a redirect, a name
# with a year, a name in wiki bold quotes (tokenised as "' ''" ... "'' '").
_FRAGMENTS = [
    "{PER}",
    "{ORG}",
    "{LOC}",
    "ראו גם : {LOC}",
    "ראו גם : {PER}",
    "{CITY} ( {COUNTRY} )",
    "{PER} ( {YEAR} - {YEAR} )",
    "{CLUB} ( כדורגל )",
    "{UNI} , {CITY}",
    "רשימת ראשי העיר {CITY}",
    "{PER} : ביוגרפיה",
    "הפניה {PER}",
    "הפניה {ORG}",
    "' '' {LOC} '' '",
    "' '' {CLUB} '' '",
    "דף השחקן באתר הרשמי של {CLUB}",
]
_NO_ENTITY = [
    "המשחק הסתיים בתיקו .",
    "מזג האוויר היה נאה במיוחד .",
    "הספר יצא לאור בשנת {YEAR} .",
    "העונה כללה {NUM} פרקים .",
    "הוא נחשב לאחד הסופרים החשובים בדורו .",
    "המבנה נהרס כליל במהלך המלחמה .",
    "במשחק השתתפו {NUM} אלף צופים .",
    "הסרט זכה לביקורות חיוביות .",
    "התחנה נסגרה בשנת {YEAR} ( לאחר {NUM} שנות פעילות ) .",
    "ראו גם :",
]
# Shares of templates / fragments / entity-free sentences: gives ~8 tokens per sentence on average.
_KIND_WEIGHTS = (0.6, 0.28, 0.12)

# Train persons: a fixed pool of first+last combinations (the same for every seed, like a fixed
# world). Validation and test draw this share of full names from all combinations instead.
_PERSON_POOL_SIZE = 50
_UNSEEN_COMBINATION_RATE = 0.35
# Share of person mentions by surname only (one B-PER token), as in encyclopaedic text.
_SURNAME_ONLY_RATE = 0.1


def _rng(seed: int, split: str) -> random.Random:
    """A generator seeded from (seed, split) the same way in every process."""
    digest = hashlib.sha256(f"ner-demo-data:{seed}:{split}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _person_pool() -> list[tuple[str, str, str]]:
    """(gender, first, last) combinations seen in training.

    Built from rounds of shuffled first-to-last pairings, so every first and every last name is
    in the pool: evaluation holds out combinations, never a name itself.
    """
    rng = _rng(0, "person-pool")
    firsts = [(g, f) for g, names in _FIRST_NAMES.items() for f in names]
    pool: list[tuple[str, str, str]] = []
    while len(pool) < _PERSON_POOL_SIZE:
        lasts = rng.sample(_LAST_NAMES, len(_LAST_NAMES))
        for (g, first), last in zip(firsts, lasts, strict=True):
            if (g, first, last) not in pool and len(pool) < _PERSON_POOL_SIZE:
                pool.append((g, first, last))
    return pool


_PERSON_POOL = _person_pool()
_POOL_BY_GENDER = {g: [p for p in _PERSON_POOL if p[0] == g] for g in _FIRST_NAMES}


def _parse(template: str) -> list[tuple[str, str]]:
    """Template -> [(kind, value)] with kind "slot", "gendered" (value "m^f") or "word"."""
    parsed = []
    for token in template.split(" "):
        if token.startswith("{") and token.endswith("}"):
            parsed.append(("slot", token[1:-1]))
        elif "^" in token:
            parsed.append(("gendered", token))
        else:
            parsed.append(("word", token))
    return parsed


_PARSED = tuple([_parse(t) for t in group] for group in (_TEMPLATES, _FRAGMENTS, _NO_ENTITY))


def _person(rng: random.Random, gender: str, unseen_ok: bool) -> list[str]:
    if rng.random() < _SURNAME_ONLY_RATE:
        return rng.choice(_LAST_NAMES).split(" ")
    if unseen_ok and rng.random() < _UNSEEN_COMBINATION_RATE:
        first, last = rng.choice(_FIRST_NAMES[gender]), rng.choice(_LAST_NAMES)
    else:
        _, first, last = rng.choice(_POOL_BY_GENDER[gender])
    return [first, *last.split(" ")]


def _sentence(rng: random.Random, parsed: list[tuple[str, str]], unseen_ok: bool) -> dict:
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
        elif value in ("YEAR", "NUM", "GOALS"):
            low, high = {"YEAR": (1900, 2023), "NUM": (2, 99), "GOALS": (0, 5)}[value]
            tokens.append(str(rng.randint(low, high)))
            tags.append("O")
        else:
            if value == "PER":
                g = gender if first_person else rng.choice(("m", "f"))
            while True:
                if value == "PER":
                    words = _person(rng, g, unseen_ok)
                else:
                    words = rng.choice(_GAZETTEER[value]).split(" ")
                if " ".join(words) not in used:
                    break
            if value == "PER":
                first_person = False
            used.add(" ".join(words))
            entity = _ENTITY_TYPE[value]
            tokens.extend(words)
            tags.extend([f"B-{entity}"] + [f"I-{entity}"] * (len(words) - 1))
    return {"tokens": tokens, "ner_tags": tags}


def generate_split(split: str, n: int | None = None, seed: int = 0) -> list[dict]:
    """Return n sentences as {"tokens": list[str], "ner_tags": list[str]} (tag names).

    `split` is one of DEMO_SPLIT_SIZES ("train", "validation", "test"); n defaults to its size
    there. The same (split, n, seed) gives the same sentences in any process, and the first k
    sentences do not depend on n.
    """
    if split not in DEMO_SPLIT_SIZES:
        raise UserError(
            f"demo data: unknown split {split!r}; expected one of {sorted(DEMO_SPLIT_SIZES)}"
        )
    if n is None:
        n = DEMO_SPLIT_SIZES[split]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise UserError(f"demo data, split {split!r}: size must be an integer >= 0, got {n!r}")
    rng = _rng(seed, split)
    unseen_ok = split != "train"
    sentences = []
    for _ in range(n):
        group = rng.choices(_PARSED, weights=_KIND_WEIGHTS)[0]
        sentences.append(_sentence(rng, rng.choice(group), unseen_ok))
    return sentences


def generate_demo(seed: int = 0, sizes: dict[str, int] | None = None) -> dict[str, list[dict]]:
    """All three splits; `sizes` overrides some or all of DEMO_SPLIT_SIZES."""
    sizes = sizes or {}
    unknown = sorted(set(sizes) - set(DEMO_SPLIT_SIZES))
    if unknown:
        raise UserError(
            f"demo data: unknown split(s) {unknown} in sizes; expected {sorted(DEMO_SPLIT_SIZES)}"
        )
    return {
        split: generate_split(split, sizes.get(split, default), seed)
        for split, default in DEMO_SPLIT_SIZES.items()
    }

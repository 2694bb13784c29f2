"""Read a source's splits: WikiANN (hub name or local directory), local files, or the demo.

Whatever the source, the result is the same: for each split a list of `Sentence` (words, tag
names, and where the sentence came from, for error messages), plus the label list. Columns the
model does not use (`langs`, `spans`) are never read. ner/data/corpus.py puts sources together (several
languages, named evaluation sets) and checks them; a new data source is a reader here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ner import LABELS_WIKIANN
from ner.data.checks import check_iob2_tags
from ner.data.sentences import Sentence
from ner.errors import DataError

SPLITS = ("train", "validation", "test")


def _from_dataset(name: str, config: str | None) -> tuple[dict[str, list[Sentence]], list[str]]:
    """A `datasets` dataset by hub name or local directory in the hub's layout (same call)."""
    import datasets

    with loading_errors(name, config):
        dd = datasets.load_dataset(name, config)
    sentences, labels = {}, None
    for split in SPLITS:
        if split not in dd:
            continue
        ds = dd[split]
        for column in ("tokens", "ner_tags"):
            if column not in ds.column_names:
                raise DataError(
                    f"dataset {name} ({config}), split {split}: no column '{column}' "
                    f"(columns: {', '.join(ds.column_names)})"
                )
        feature = ds.features["ner_tags"]
        names = getattr(getattr(feature, "feature", None), "names", None)
        if names is None:
            raise DataError(
                f"dataset {name} ({config}), split {split}: ner_tags has no ClassLabel names; "
                "export it to JSON-lines with tag names and use data.train_file"
            )
        if labels is not None and names != labels:
            raise DataError(
                f"dataset {name} ({config}), split {split}: label names {names} differ from "
                f"the train split's {labels}"
            )
        labels = names
        cols = ds.select_columns(["tokens", "ner_tags"]).to_dict()
        out = []
        for row, (tokens, tags) in enumerate(zip(cols["tokens"], cols["ner_tags"], strict=True)):
            where = f"dataset {name} ({config}), split {split}, row {row}"
            bad = [t for t in tags if not 0 <= t < len(names)]
            if bad:
                raise DataError(f"{where}: tag id {bad[0]} outside the {len(names)} labels {names}")
            out.append(Sentence(list(tokens), [names[t] for t in tags], where))
        sentences[split] = out
    return sentences, labels or []


@contextlib.contextmanager
def loading_errors(name: str, config: str | None) -> Iterator[None]:
    """A dataset that cannot be loaded is one line: out of reach (offline, or the hub after its
    retries), or missing or malformed."""
    try:
        yield
    except ConnectionError as e:
        reason = " ".join(str(e).split())
        raise DataError(
            f"dataset {name} ({config}): cannot reach the Hugging Face Hub ({reason}); offline, "
            "give a local copy in the hub's layout: data.name=DIR (e.g. data.name=../shared/wikiann;"
            " ner-evaluate: --data-name DIR)"
        ) from None
    except (FileNotFoundError, ValueError) as e:
        raise DataError(f"dataset {name} ({config}): cannot load: {e}") from e


def check_reachable(name: str, config: str | None) -> None:
    """Raise the one-line error now if the dataset can neither be downloaded nor read from the
    local cache (used before any work when the hub is offline)."""
    import datasets

    with loading_errors(name, config):
        datasets.load_dataset_builder(name, config)


def _from_demo(language: str | None) -> dict[str, list[Sentence]]:
    from ner.demo.generate import generate_demo

    name = f"demo ({language})" if language else "demo"
    return {
        split: [
            Sentence(ex["tokens"], ex["ner_tags"], f"{name}, split {split}, row {i}")
            for i, ex in enumerate(rows)
        ]
        for split, rows in generate_demo(language=language or "he").items()
    }


def labels_from_tags(sentences: list[Sentence]) -> list[str]:
    """O first, then B-/I- of each entity type in alphabetical order (stable across runs).

    Raises DataError at the first tag that is not IOB2, which would give a wrong label set.
    """
    check_iob2_tags(sentences)
    types = sorted({t[2:] for s in sentences for t in s.tags if t != "O"})
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def read_source(data_cfg, config: str | None) -> tuple[dict[str, list[Sentence]], list[str], str]:
    """The splits of one configuration of data.name (the demo's language, or a dataset's), with
    data.*_file replacing splits, its label list, and its name for messages and the card."""
    from ner.data.files import read_sentences

    if data_cfg.name == "demo":
        sentences, labels = _from_demo(config), list(LABELS_WIKIANN)
    else:
        sentences, labels = _from_dataset(data_cfg.name, config)
    source = data_cfg.name + (f" ({config})" if config else "")
    files = {
        "train": data_cfg.train_file,
        "validation": data_cfg.validation_file,
        "test": data_cfg.test_file,
    }
    for split, path in files.items():
        if path is not None:
            sentences[split] = read_sentences(path, split)
    return sentences, labels, source

"""Load the splits: WikiANN (hub name or local directory), local files, or the generated demo.

Whatever the source, the result is the same: for each split a list of `Sentence` (words, tag
names, and where the sentence came from, for error messages), validated, plus the label list.
Columns the model does not use (`langs`, `spans`) are never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ner import LABELS_WIKIANN
from ner.errors import DataError
from ner.sentences import Sentence
from ner.validate import ValidationReport, check_iob2_tags, check_label_sets, validate_split

SPLITS = ("train", "validation", "test")


@dataclass
class Splits:
    sentences: dict[str, list[Sentence]]  # train, validation and (optionally) test
    labels: list[str]  # label names in id order
    source: str  # for the card: "unimelb-nlp/wikiann (he)", "demo", file names
    reports: dict[str, ValidationReport] = field(default_factory=dict)


def _from_dataset(name: str, config: str | None) -> tuple[dict[str, list[Sentence]], list[str]]:
    """A `datasets` dataset by hub name or local directory in the hub's layout (same call)."""
    import datasets

    try:
        dd = datasets.load_dataset(name, config)
    except ConnectionError as e:  # offline, or the hub out of reach after its retries
        raise unreachable(name, config, e) from None
    except (FileNotFoundError, ValueError) as e:
        raise DataError(f"dataset {name} ({config}): cannot load: {e}") from e
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


def unreachable(name: str, config: str | None, error: Exception) -> DataError:
    reason = " ".join(str(error).split())
    return DataError(
        f"dataset {name} ({config}): cannot reach the Hugging Face Hub ({reason}); offline, give "
        "a local copy in the hub's layout: data.name=DIR (e.g. data.name=../shared/wikiann)"
    )


def check_reachable(name: str, config: str | None) -> None:
    """Raise the one-line error now if the dataset can neither be downloaded nor read from the
    local cache (used before any work when the hub is offline)."""
    import datasets

    try:
        datasets.load_dataset_builder(name, config)
    except ConnectionError as e:
        raise unreachable(name, config, e) from None
    except (FileNotFoundError, ValueError) as e:
        raise DataError(f"dataset {name} ({config}): cannot load: {e}") from e


def _from_demo() -> dict[str, list[Sentence]]:
    from ner.demo_data import generate_demo

    return {
        split: [
            Sentence(ex["tokens"], ex["ner_tags"], f"demo, split {split}, row {i}")
            for i, ex in enumerate(rows)
        ]
        for split, rows in generate_demo().items()
    }


def labels_from_tags(sentences: list[Sentence]) -> list[str]:
    """O first, then B-/I- of each entity type in alphabetical order (stable across runs).

    Raises DataError at the first tag that is not IOB2, which would give a wrong label set.
    """
    check_iob2_tags(sentences)
    types = sorted({t[2:] for s in sentences for t in s.tags if t != "O"})
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def load_splits(data_cfg) -> Splits:
    """Load, cut (max_*_samples) and validate every split; raise DataError on bad input."""
    from ner.data_files import read_sentences

    files = {
        "train": data_cfg.train_file,
        "validation": data_cfg.validation_file,
        "test": data_cfg.test_file,
    }
    if data_cfg.name == "demo":
        sentences, labels, source = _from_demo(), list(LABELS_WIKIANN), "demo"
    elif data_cfg.name is not None:
        sentences, labels = _from_dataset(data_cfg.name, data_cfg.config)
        source = data_cfg.name + (f" ({data_cfg.config})" if data_cfg.config else "")
    else:
        sentences, labels, source = {}, None, "local files"
    for split, path in files.items():
        if path is not None:
            sentences[split] = read_sentences(path, split)

    for split in ("train", "validation"):
        if not sentences.get(split):
            have = ", ".join(s for s in sentences if sentences[s]) or "none"
            raise DataError(
                f"{source}: no {split} split (splits found: {have}); give data.{split}_file=PATH"
            )
    if data_cfg.max_train_samples is not None:
        sentences["train"] = sentences["train"][: data_cfg.max_train_samples]
    if data_cfg.max_eval_samples is not None:
        for split in ("validation", "test"):
            if split in sentences:
                sentences[split] = sentences[split][: data_cfg.max_eval_samples]

    derived = not labels  # local files only: the label set is the training split's
    if derived:
        labels = labels_from_tags(sentences["train"])
    reports = {}
    for split in list(sentences):  # train first: its sentences define a derived label set
        if derived and split != "train":
            check_iob2_tags(sentences[split])  # 'b-per' is named with its line, not as a new tag
            name = f"{split} ({files[split]})" if files[split] else split
            check_label_sets(
                {t for s in sentences["train"] for t in s.tags},
                {name: {t for s in sentences[split] for t in s.tags}},
            )
        sentences[split], reports[split] = validate_split(
            sentences[split], labels, split, data_cfg.on_error
        )
    return Splits(sentences, labels, source, reports)

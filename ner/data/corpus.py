"""What a run trains and evaluates on: training sources and named evaluation sets.

A run trains on one or several *sources*: the configurations of `data.name` (`data.config=[he,
ar]`: two languages), or local training files (`data.train_file=[a.conll, b.conll]`). Their
union is what an epoch draws from (`data.sampling_alpha`, ner/batching.py). It evaluates on one
or several *named sets*: by default the training configurations, else `data.eval_configs`, plus
`data.extra_eval_files` (name -> file), each with its validation split (every epoch) and, when it
has one, its test split (once, at the end). With one set the log keys are today's (`eval_f1`);
with several, each set has its own (`eval_he_f1`) and the plain keys are their macro mean.

Every source and set goes through the same reading and checks (ner/data/sources.py, ner/data/checks.py);
all of them must share one label list, and a difference names the set and the labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ner.data.checks import ValidationReport, check_iob2_tags, check_label_sets, validate_split
from ner.data.sentences import Sentence, fingerprint
from ner.data.sources import SPLITS, labels_from_tags, read_source
from ner.errors import DataError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")  # a set's name goes into log keys and tags


@dataclass
class EvalSet:
    """A named evaluation set: its validation split, scored every epoch, and maybe a test split."""

    name: str
    sentences: dict[str, list[Sentence]]  # "validation", and "test" when there is one
    source: str  # for messages and the card: "unimelb-nlp/wikiann (he)", a file


@dataclass
class Corpus:
    train: list[tuple[str, list[Sentence]]]  # the training sources, in order: name, sentences
    eval_sets: list[EvalSet]
    labels: list[str]  # label names in id order
    source: str  # for the card
    reports: list[ValidationReport] = field(default_factory=list)  # one per source and split
    # The fingerprint of every source and split as the run uses them (cut, checked), under the
    # name the run prints it by ("train", "validation (he)"): a checkpoint keeps them.
    fingerprints: dict[str, str] = field(default_factory=dict)
    train_sources: list[str] = field(default_factory=list)  # where each training source is from

    def split(self, split: str) -> list[tuple[str, list[Sentence], str]]:
        """(name, sentences, where) of `split` in every evaluation set that has it (of every
        training source, for "train"), as the run cut and checked it (ner-evaluate)."""
        if split == "train":
            named = zip(self.train, self.train_sources, strict=True)
            return [(name, sentences, where) for (name, sentences), where in named if sentences]
        return [
            (s.name, s.sentences[split], s.source) for s in self.eval_sets if s.sentences.get(split)
        ]


def as_list(value) -> list:
    """null, one string, or a list of them, as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def configs(data_cfg) -> list:
    """data.config as a list: its one reading. The config keeps the key as written (`he` or
    `[he, ar]`): the saved config is compared on resume and shown on the card as it was given."""
    return as_list(data_cfg.config)


def train_files(data_cfg) -> list:
    """data.train_file as a list: its one reading (kept as written, as data.config is)."""
    return as_list(data_cfg.train_file)


def training_names(data_cfg) -> list[str]:
    """The names of the training sources a config gives (for messages and the card)."""
    if data_cfg.name is not None:
        return [str(c) for c in configs(data_cfg)] or [str(data_cfg.name)]
    files = train_files(data_cfg)
    return [Path(f).stem for f in files] if len(files) > 1 else ["train"]


def _eval_configs(data_cfg) -> list:
    """The configurations of data.name that are evaluation sets: data.eval_configs, else the
    training ones (None: the dataset's only configuration)."""
    return list(data_cfg.eval_configs or []) or configs(data_cfg) or [None]


def eval_set_names(data_cfg) -> list[str]:
    """The names of the evaluation sets a config gives, before reading any data; local files
    without a validation file still name their (missing) set "validation"."""
    if data_cfg.name is not None:
        base = [str(c or data_cfg.name) for c in _eval_configs(data_cfg)]
    else:
        file = data_cfg.validation_file
        base = [Path(file).stem if file else "validation"]
    return [*base, *(data_cfg.extra_eval_files or {})]


def training_sets(data_cfg) -> list[str]:
    """The evaluation sets that are validation sets of the training data: those of the training
    configurations (all of data.name's sets when none of them is one), or the local validation
    file; never data.extra_eval_files."""
    every = eval_set_names(data_cfg)
    names = every[: len(every) - len(data_cfg.extra_eval_files or {})]
    if data_cfg.name is None:
        return names
    trained = {str(c or data_cfg.name) for c in configs(data_cfg) or [None]}
    return [n for n in names if n in trained] or names


def selection_monitor(data_cfg) -> str:
    """trainer.monitor's default: F1 on the training languages' validation sets (see its
    comment in ner/config.py)."""
    every, selected = eval_set_names(data_cfg), training_sets(data_cfg)
    if selected == every:
        return "eval_f1"
    return f"eval_{selected[0]}_f1" if len(selected) == 1 else "eval_training_f1"


REQUIRED = ("train", "validation")  # the splits a run trains and selects on


def load_corpus(data_cfg, required: tuple[str, ...] = REQUIRED) -> Corpus:
    """Read, cut (max_*_samples) and check every source and set; raise DataError on bad input.

    Training and ner-evaluate both read a run's data here. Every training source needs the train
    split and every set the validation split, unless `required` says otherwise (ner-evaluate
    on other data than a run's: `--data-name` with only a test split)."""
    from ner.data.files import read_sentences

    names = configs(data_cfg) or [None]
    labels, source = None, "local files"
    if data_cfg.name is not None:
        read = {}  # configuration -> ({split: sentences}, where), each read once
        for config in dict.fromkeys([*names, *(data_cfg.eval_configs or [])]):
            splits, found, where = read_source(data_cfg, config)
            if labels is not None and found != labels:
                raise DataError(
                    f"{where}: labels {found} differ from {source}'s {labels}; every source "
                    "and evaluation set needs the same labels"
                )
            read[config], labels, source = (splits, where), found, source if labels else where
        train = [(str(c or data_cfg.name), read[c][0].get("train", []), read[c]) for c in names]
        sets = [(str(c or data_cfg.name), *read[c]) for c in _eval_configs(data_cfg)]
    else:
        files = train_files(data_cfg)
        held_out = {
            split: read_sentences(path, split)
            for split, path in (
                ("validation", data_cfg.validation_file),
                ("test", data_cfg.test_file),
            )
            if path is not None
        }
        found = {"train": files, **held_out}
        train = [
            (name, read_sentences(f, "train"), (found, source))
            for name, f in zip(training_names(data_cfg), files, strict=True)
        ]
        sets = [(eval_set_names(data_cfg)[0], {**held_out, "train": files}, source)]
    for name, path in (data_cfg.extra_eval_files or {}).items():
        sets.append((name, {"validation": read_sentences(path, f"validation {name}")}, path))
    _check_names(sets)
    for _, sentences, (found, where) in train:
        if "train" in required and not sentences:
            raise _missing(where, "train", found)
    eval_sets = []
    for name, splits, where in sets:
        if "validation" in required and not splits.get("validation"):
            raise _missing(where, "validation", splits)
        cut = {s: v[: data_cfg.max_eval_samples] for s, v in splits.items() if s != "train" and v}
        eval_sets.append(EvalSet(name, cut, where))
    cut = [(name, sentences[: data_cfg.max_train_samples]) for name, sentences, _ in train]
    corpus = _checked(data_cfg, cut, eval_sets, labels, source)
    corpus.train_sources = [where for *_, (_, where) in train]
    return corpus


def _missing(where: str, split: str, found: dict) -> DataError:
    have = ", ".join(s for s in SPLITS if found.get(s)) or "none"
    return DataError(
        f"{where}: no {split} split (splits found: {have}); give data.{split}_file=PATH"
    )


def _check_names(sets: list) -> None:
    seen: set[str] = set()
    for name, *_ in sets:
        if not _NAME.match(name):
            raise DataError(
                f"evaluation set name {name!r}: use letters, digits, '_' and '-' (it becomes a "
                "log key such as eval_<name>_f1)"
            )
        if name in seen:
            raise DataError(f"evaluation set name {name!r} is used twice")
        seen.add(name)


def _checked(data_cfg, train, eval_sets: list[EvalSet], labels, source: str) -> Corpus:
    """Label list (the dataset's, or derived from the training tags) and validation of every
    source and split, in order: training sources first."""
    several = len(train) > 1 or len(eval_sets) > 1
    derived = not labels
    if derived:
        labels = labels_from_tags([s for _, sentences in train for s in sentences])
    train_tags = {t for _, sentences in train for s in sentences for t in s.tags}
    reports, checked_train, fingerprints = [], [], {}
    for name, sentences in train:
        label = f"train ({name})" if several else "train"
        kept, report = validate_split(sentences, labels, label, data_cfg.on_error)
        checked_train.append((name, kept))
        reports.append(report)
        fingerprints[label] = fingerprint(kept)
    for eval_set in eval_sets:
        for split, sentences in list(eval_set.sentences.items()):
            label = f"{split} ({eval_set.name})" if several else split
            if derived:
                check_iob2_tags(sentences)  # 'b-per' is named with its line, not as a new tag
                file = data_cfg.validation_file if split == "validation" else data_cfg.test_file
                where = (
                    f"{split} ({eval_set.source})" if several or not file else f"{split} ({file})"
                )
                tags = {t for s in sentences for t in s.tags}
                check_label_sets(train_tags, {where: tags}, {where: sentences})
            eval_set.sentences[split], report = validate_split(
                sentences, labels, label, data_cfg.on_error
            )
            reports.append(report)
            fingerprints[label] = fingerprint(eval_set.sentences[split])
    return Corpus(checked_train, eval_sets, labels, source, reports, fingerprints)

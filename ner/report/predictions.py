"""Saved predictions: a model's word-level predictions on one split of one evaluation set, kept
so that a comparison of runs (ner-report --compare, ner/report/paired.py) or an error analysis
needs neither the model nor the data afterwards.

A finished run keeps its best model's (best.pt) on every evaluation set's validation split and,
when it was tested, its test split (`save_best`, called by ner/finish.py); `ner-evaluate RUN
--save-predictions` writes the same files from the checkpoint for a run made before runs kept
them. One file per split and set, `<run dir>/predictions/<split>.<set>.json.gz`, one JSON object:

    {"format": 1, "split": "validation", "set": "he", "epoch": 3.0,
     "labels": ["O", "B-PER", ...], "fingerprint": "<sha256>", "sentences": 2,
     "ids": [0, 1], "gold": [[1, 2, 0], [0]], "pred": [[1, 2, 0], [3]]}

`ids` are the sentences' indices in the set as the run scored it (its data config's
max_eval_samples and checks applied), `gold` and `pred` the label ids (indices into `labels`)
of every word, `epoch` the epoch of the weights. `fingerprint` is ner.data.sentences.fingerprint
of the sentences (their words and tags: the one the run's checkpoints keep), so two files are
compared only when they hold the same sentences. Why one gzipped JSON object and not JSON lines:
a comparison always reads a set whole, the header then sits with the body it describes, and the
small integers compress about tenfold; gzip is written with mtime 0, so the same predictions are
the same bytes (on 1 or N processes, from training or from ner-evaluate). No torch here.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ner import atomic
from ner.data.sentences import Sentence, fingerprint
from ner.errors import UserError

FORMAT = 1
DIRECTORY = "predictions"
SUFFIX = ".json.gz"


@dataclass(frozen=True)
class Predictions:
    split: str
    set: str
    epoch: float | None
    labels: tuple[str, ...]
    fingerprint: str
    ids: list[int]
    gold: list[list[int]]
    pred: list[list[int]]

    def tags(self, ids: list[list[int]]) -> list[list[str]]:
        """Label ids (`self.gold` or `self.pred`) as tag names."""
        return [[self.labels[i] for i in sentence] for sentence in ids]


def file_name(split: str, set_name: str) -> str:
    return f"{split}.{set_name}{SUFFIX}"


def write(
    directory: Path,
    split: str,
    set_name: str,
    labels: Sequence[str],
    sentences: Sequence[Sentence],
    pred: Sequence[Sequence[str]],
    epoch: float | None,
) -> Path:
    """Write the predicted tags `pred` of `sentences` (gold tags and words: theirs) atomically
    under `directory`; returns the file's path."""
    assert len(sentences) == len(pred), f"{len(sentences)} sentences, {len(pred)} predicted"
    label_id = {name: i for i, name in enumerate(labels)}
    record = {
        "format": FORMAT,
        "split": split,
        "set": set_name,
        "epoch": epoch,
        "labels": list(labels),
        "fingerprint": fingerprint(list(sentences)),
        "sentences": len(sentences),
        "ids": list(range(len(sentences))),
        "gold": [[label_id[t] for t in s.tags] for s in sentences],
        "pred": [[label_id[t] for t in p] for p in pred],
    }
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    path = directory / file_name(split, set_name)
    atomic.write_bytes(path, gzip.compress(text.encode("utf-8"), mtime=0), "predictions file")
    return path


def read(path: Path) -> Predictions:
    """One file, checked whole: a torn or foreign file is one line naming it."""
    try:
        r = json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
        if r.get("format") != FORMAT:
            raise ValueError(f"format {r.get('format')!r}, not {FORMAT}")
        p = Predictions(
            r["split"],
            r["set"],
            r["epoch"],
            tuple(r["labels"]),
            r["fingerprint"],
            r["ids"],
            r["gold"],
            r["pred"],
        )
        lengths_agree = all(len(g) == len(q) for g, q in zip(p.gold, p.pred, strict=True))
        if not (len(p.ids) == len(p.gold) == len(p.pred) == r["sentences"] and lengths_agree):
            raise ValueError("its sentences, gold and predicted tags do not line up")
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"predictions file {path}: cannot be read ({e})") from None
    return p


def read_run(run_dir: Path) -> dict[tuple[str, str], Predictions]:
    """Every saved file of a run by (split, set); empty when it has none."""
    directory = run_dir / DIRECTORY
    found = sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []
    return {(p.split, p.set): p for p in map(read, found)}


def save_best(run_dir: Path, data, scored: dict[str, dict], epoch, is_main) -> None:
    """The end of a run (ner/finish.py), with the best weights loaded: rank 0 writes under
    `run_dir` the predictions of every evaluation set of `data` (ner/prepare.py) in `scored`
    (split -> set name -> the result of ner/evaluate.py). finish.py scores validation again
    rather than keeping the best epoch's predictions: the files are then what best.pt predicts
    by construction, whatever a resume, an extension or a best.pt repaired from last.pt did in
    between, and what ner-evaluate RUN reproduces; one more pass over the validation sets is
    its cost."""
    if not is_main:
        return
    sentences = {s.name: s.sentences for s in data.corpus.eval_sets}
    for split, by_set in scored.items():
        for name, result in by_set.items():
            write(
                run_dir / DIRECTORY,
                split,
                name,
                data.labels,
                sentences[name][split],
                result["predictions"],
                epoch,
            )

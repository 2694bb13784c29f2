"""`ner-predict`: tag raw text with a trained model; entities with character offsets.

    ner-predict outputs/demo "דוד בן-גוריון נולד בפולין ." "Visit New York"
    ner-predict outputs/demo/best_model --file sentences.txt > tagged.jsonl
    echo "משה כהן גר בחיפה" | ner-predict outputs/demo --format text

TARGET is a run directory (its best checkpoint by default), a checkpoint file or an exported
model directory (ner/tools/trained.py). Input is one sentence per line: the TEXT arguments, else
--file, else stdin (from a terminal, one line on stderr first says so: type, then Ctrl-D).
Each line is split into words (ner/tools/words.py), tagged through the same windows as training (so
a long line loses no word), and its entities are decoded from the predicted IOB2 tags with
seqeval's default-mode rules (an I-X after O or after another type starts an entity).
Output, one entry per input line (an empty line gives an entry with no words):
- json (default): one JSON object per line, {"text", "words", "tags", "entities"}, each entity
  {"type", "text", "start_word", "end_word" (exclusive), "start", "end"} with
  text == line[start:end] (Python string indices, logical order: Hebrew is never reversed);
- text: the line, then "TYPE<TAB>start-end<TAB>entity text" per entity, then a blank line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from seqeval.metrics.sequence_labeling import get_entities
from transformers.utils import logging as hf_logging

from ner import distributed
from ner.batching import Collator
from ner.data.files import decode_utf8
from ner.errors import UserError, exit_on_ctrl_c, exit_on_error
from ner.evaluate import predict_features
from ner.features import encode_split, gather_word_predictions
from ner.tools import trained
from ner.tools.words import split_words

CHUNK_LINES = 512  # lines tagged (and written) at a time, so large inputs stream
STDIN_HINT = "ner-predict: reading text from stdin, one sentence per line; end with Ctrl-D"


def decode_entities(
    text: str, words: Sequence[tuple[str, int, int]], tags: Sequence[str]
) -> list[dict]:
    """Entities of one line from its words (with offsets) and their IOB2 tags."""
    assert len(words) == len(tags), f"{len(words)} words but {len(tags)} tags"
    out = []
    for typ, first, last in get_entities(list(tags)):  # `last` is inclusive
        start, end = words[first][1], words[last][2]
        out.append(
            {
                "type": typ,
                "text": text[start:end],
                "start_word": first,
                "end_word": last + 1,
                "start": start,
                "end": end,
            }
        )
    return out


def tag_lines(
    loaded: trained.Loaded, lines: Sequence[str], batch_size: int, env: distributed.Env
) -> list[dict]:
    """One result dict per line (see the module docstring)."""
    split = [split_words(line) for line in lines]
    todo = [k for k, words in enumerate(split) if words]
    sentences = [[w for w, _, _ in split[k]] for k in todo]
    tags: list[list[str]] = [[] for _ in lines]
    if sentences:
        # Dummy labels (id 0) mark every word's first sub-token as a position to predict.
        features, _ = encode_split(
            loaded.tokenizer,
            sentences,
            [[0] * len(s) for s in sentences],
            loaded.max_length,
            loaded.stride,
        )
        collate = Collator.for_device(loaded.tokenizer, env.device)
        preds, _, _ = predict_features(
            loaded.model, features, batch_size, collate, env, loaded.precision
        )
        for k, ids in zip(
            todo, gather_word_predictions(features, preds, len(sentences)), strict=True
        ):
            tags[k] = [loaded.labels[i] for i in ids]
    results = []
    for line, words, line_tags in zip(lines, split, tags, strict=True):
        results.append(
            {
                "text": line,
                "words": [w for w, _, _ in words],
                "tags": line_tags,
                "entities": decode_entities(line, words, line_tags),
            }
        )
    return results


def format_text(result: dict) -> str:
    lines = [result["text"]]
    for e in result["entities"]:
        lines.append(f"{e['type']}\t{e['start']}-{e['end']}\t{e['text']}")
    return "\n".join(lines) + "\n"


def _lines(text: str) -> list[str]:
    """Lines split on "\\n" only (not str.splitlines, which also splits on U+2028 and others)."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def input_lines(args: argparse.Namespace) -> Iterator[str]:
    """The TEXT arguments, else the lines of --file, else those of stdin."""
    if args.text:
        for arg in args.text:
            yield from _lines(arg) or [""]
    elif args.file:
        try:
            data = Path(args.file).read_bytes()
        except OSError as e:
            raise UserError(f"{args.file}: cannot read ({e.strerror})") from None
        yield from _lines(decode_utf8(data, args.file))
    else:
        if sys.stdin.isatty():  # a terminal: say what the silence waits for
            print(STDIN_HINT, file=sys.stderr, flush=True)
        # Line by line, so output can follow input through a pipe.
        for number, raw in enumerate(sys.stdin.buffer, start=1):
            yield decode_utf8(raw, "stdin", number).removesuffix("\n").removesuffix("\r")


def chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ner-predict", description="Tag text with a trained NER model."
    )
    p.add_argument("target", help="run directory, checkpoint file, or exported model directory")
    p.add_argument("text", nargs="*", help="sentences to tag (default: --file, else stdin)")
    p.add_argument("--file", help="UTF-8 text file, one sentence per line")
    p.add_argument("--format", choices=("json", "text"), default="json")
    p.add_argument("--checkpoint", help="checkpoint of a run directory: best (default), last, ...")
    p.add_argument("--batch-size", type=int, help="sentences per batch (default: the run's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = p.parse_args(argv)
    if args.text and args.file:
        p.error("give TEXT arguments or --file, not both")
    if args.batch_size is not None and args.batch_size < 1:
        p.error("--batch-size must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Console script `ner-predict`; returns the exit status (2 on a user error, 130 on Ctrl-C)."""
    args = parse_args(argv)
    hf_logging.disable_progress_bar()  # no "Loading weights" bar between results
    if (sys.stdout.encoding or "").lower().replace("-", "") != "utf8":
        sys.stdout.reconfigure(encoding="utf-8")  # Hebrew output under a C or Latin-1 locale
    try:
        # One process: prediction is not sharded, so no process group is joined.
        env = distributed.Env(device=distributed.pick_device(args.device, 0))
        loaded = trained.load(args.target, args.checkpoint, env.device)
        batch_size = args.batch_size or loaded.batch_size
        for chunk in chunks(input_lines(args), CHUNK_LINES):
            with torch.inference_mode():
                results = tag_lines(loaded, chunk, batch_size, env)
            for r in results:
                if args.format == "json":
                    sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
                else:
                    sys.stdout.write(format_text(r) + "\n")
            sys.stdout.flush()
    except UserError as e:
        return exit_on_error(e)
    except KeyboardInterrupt:  # the lines printed so far are whole: each is written at once
        return exit_on_ctrl_c("ner-predict")
    return 0


if __name__ == "__main__":
    sys.exit(main())

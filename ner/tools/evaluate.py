"""`ner-evaluate`: score a trained model on a split, exactly as training scored it.

    ner-evaluate outputs/demo                              # best.pt on the run's validation split
    ner-evaluate outputs/demo --checkpoint last --split test
    ner-evaluate outputs/demo --split test --bootstrap 1000    # F1 with its 95% interval
    ner-evaluate outputs/demo/best_model --data-file data/dev.conll --predictions dev.pred.conll
    torchrun --standalone --nproc_per_node=2 -m ner.tools.evaluate outputs/demo --split test

TARGET is a run directory, a checkpoint file or an exported model directory (ner/tools/trained.py).
The data is the run's own (its data config, `max_eval_samples` included, so the numbers match
its log), or `--data-file` (JSON lines or CoNLL), or `--data-name/--data-config` (a `datasets`
name or local directory). Sentences are windowed as in training and scored with
`ner.evaluate.evaluate`, sharded over the processes of a torchrun job; rank 0 alone prints and
writes. Metrics go to `--output` (default `<run dir>/eval_<split>_<checkpoint>.json` for a
checkpoint of a run; `-` prints the JSON on stdout), `--predictions` writes
`token<TAB>gold<TAB>predicted` per word with a blank line after each sentence, for error
analysis (its last column is a tag, so `ner.data.files.read_sentences` reads it back as the
predicted tagging); `--errors` prints the error analysis of ner/report/errors.py after the
metrics; `--save-predictions` keeps the best model's predictions as a run does at its end (a run
made before runs kept them: for ner-report --compare). A user error is one line, status 2;
Ctrl-C one line, status 130.

The sets are read as training reads them (ner.data.corpus.load_corpus); the summary and the
predictions file are written by ner/tools/eval_output.py.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from omegaconf import OmegaConf
from transformers.utils import logging as hf_logging

from ner import atomic, distributed
from ner import metrics as registry
from ner.atomic import write_json
from ner.batching import Collator
from ner.config import DataConfig
from ner.data.checks import validate_split
from ner.data.sentences import Sentence
from ner.errors import UserError, exit_on_ctrl_c, exit_on_error
from ner.evaluate import evaluate
from ner.features import encode_split
from ner.report import bootstrap
from ner.report import errors as error_analysis
from ner.run.inputs import check_hub
from ner.tools import eval_output, trained
from ner.tools.eval_output import summary, write_predictions

SPLIT_CHOICES = ("validation", "test", "train")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ner-evaluate", description="Evaluate a trained NER model on a split."
    )
    p.add_argument("target", help="run directory, checkpoint file, or exported model directory")
    p.add_argument(
        "--checkpoint",
        help="checkpoint of a run directory: best (default), last, or a step-<N> file's name",
    )
    p.add_argument("--split", choices=SPLIT_CHOICES, default="validation")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--data-file", nargs="+", help="JSON-lines or CoNLL file(s): each is a set, by its stem"
    )
    source.add_argument("--data-name", help="`datasets` name or local dataset directory")
    p.add_argument(
        "--data-config", nargs="+", help="configuration(s) of --data-name (he ar): one set each"
    )
    p.add_argument("--batch-size", type=int, help="sentences per batch (default: the run's)")
    p.add_argument("--max-samples", type=int, help="evaluate the first N sentences only")
    p.add_argument(
        "--output",
        help="metrics JSON file; `-` for stdout (default for a run's checkpoint: "
        "<run dir>/eval_<split>_<checkpoint>[_<data>].json; for an export: none)",
    )
    p.add_argument("--predictions", help="write every word's token, gold and predicted tag (CoNLL)")
    p.add_argument(
        "--errors", action="store_true", help="print the error analysis (ner/report/errors.py)"
    )
    p.add_argument(
        "--save-predictions",
        nargs="?",
        const="",
        metavar="DIR",
        help="keep the run's best model's predictions of the split for ner-report --compare "
        "(default DIR: <run dir>/predictions, as a run saves them; ner/report/predictions.py)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--bootstrap", type=int, metavar="N", help="95%% intervals from N resamples")
    p.add_argument("--bootstrap-seed", type=int, default=0, help="their seed (default: 0)")
    args = p.parse_args(argv)
    if args.data_config is not None and args.data_name is None:
        p.error("--data-config needs --data-name")
    for key in ("batch_size", "max_samples", "bootstrap"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be >= 1")
    for key in ("output", "predictions"):  # files, written after the evaluation
        if Path(getattr(args, key) or "-").is_dir():
            p.error(f"--{key} {getattr(args, key)} is a directory; give a file's path")
    return args


def load_sets(args: argparse.Namespace, loaded: trained.Loaded) -> list[tuple]:
    """(name, sentences, source) of every set to score, checked against the model's labels:
    the files, the configurations, or the run's own evaluation sets (read, cut and checked by
    ner.data.corpus.load_corpus, as training read them, so the numbers match its log)."""
    from ner.data.corpus import REQUIRED, load_corpus
    from ner.data.files import read_sentences
    from ner.data.sources import SPLITS

    on_error = loaded.cfg.data.on_error if loaded.cfg is not None else DataConfig.on_error
    if args.data_file:
        stems = [Path(f).stem for f in args.data_file]
        for stem in stems:
            if stems.count(stem) > 1:
                same = " and ".join(
                    f for f, s in zip(args.data_file, stems, strict=True) if s == stem
                )
                raise UserError(
                    f"--data-file: {same} would both be the set {stem!r} (a file's set is its "
                    "name without the extension); copy or link one under another name"
                )
        sets = [
            (stem, read_sentences(f, args.split), f)
            for stem, f in zip(stems, args.data_file, strict=True)
        ]
    else:
        if args.data_name:
            data_cfg = OmegaConf.structured(
                DataConfig(name=args.data_name, config=args.data_config, on_error=on_error)
            )
        elif loaded.cfg is not None:
            data_cfg = loaded.cfg.data  # the run's own: the same sentences its log was made on
        else:
            raise UserError(
                f"{loaded.path}: an exported model outside a run directory has no data "
                "settings; give --data-file PATH or --data-name NAME"
            )
        check_hub(None, data_cfg)  # one request, not a minute of retries, when the hub is away
        # Other data than the run's need not have the splits a run trains on.
        corpus = load_corpus(data_cfg, () if args.data_name else REQUIRED)
        sets = corpus.split(args.split)
        if not sets:
            have = [s for s in SPLITS if s != args.split and corpus.split(s)]
            raise UserError(
                f"data {data_cfg.name or 'local files'}: no {args.split} split "
                f"(splits: {', '.join(have)})"
            )
    checked = []
    for name, sentences, source in sets:
        sentences = sentences[: args.max_samples] if args.max_samples else sentences
        # The gold tags must be labels the model knows (a local-file run has its own label set).
        sentences, _ = validate_split(sentences, loaded.labels, args.split, on_error)
        if not sentences:
            raise UserError(f"data {source}, split {args.split}: no sentences to evaluate")
        checked.append((name, sentences, source))
    return checked


def default_output(args: argparse.Namespace, loaded: trained.Loaded) -> Path | None:
    """`<run dir>/eval_<split>_<checkpoint>[_<data>].json` for a run's checkpoint, else None."""
    if loaded.run_dir is None or loaded.checkpoint == "hf":
        return None
    name = f"eval_{args.split}_{loaded.checkpoint}"
    other = "_".join(Path(f).stem for f in args.data_file) if args.data_file else args.data_name
    if other:  # other data than the run's own: say so in the name, never overwrite its file
        tag = "_".join(x for x in (other, *(args.data_config or [])) if x)
        name += "_" + re.sub(r"[^\w.-]+", "-", tag).strip("-")
    return loaded.run_dir / f"{name}.json"


def check_writable(args: argparse.Namespace, output: Path | None, env) -> None:
    """Refuse in one line, on every rank, when the metrics or predictions file could not be
    written (a read-only run directory: --output puts the metrics elsewhere)."""
    problem = None
    if env.is_main:
        try:
            if output is not None:
                try:
                    atomic.check_writable(output, "metrics file")
                except UserError as e:
                    if args.output is not None:
                        raise
                    raise UserError(f"{e}; give --output PATH, or --output - for stdout") from None
            if args.predictions:
                atomic.check_writable(Path(args.predictions), "predictions file")
        except UserError as e:
            problem = e
    problem = distributed.broadcast_object(problem, env)
    if problem:
        raise problem


def score(args, loaded: trained.Loaded, sentences: list[Sentence], env, out) -> dict:
    """Windows as in training, then ner.evaluate.evaluate, sharded over the processes."""
    label_id = {name: i for i, name in enumerate(loaded.labels)}
    features, stats = encode_split(
        loaded.tokenizer,
        [s.tokens for s in sentences],
        [[label_id[t] for t in s.tags] for s in sentences],
        loaded.max_length,
        loaded.stride,
    )
    if env.is_main and stats.split_sentences + stats.empty_words + stats.capped_words:
        print("\n".join(stats.lines(args.split)), file=out, flush=True)
    collate = Collator.for_device(loaded.tokenizer, env.device)
    gold = [list(s.tags) for s in sentences]
    batch_size = args.batch_size or loaded.batch_size
    result = evaluate(
        loaded.model, features, gold, loaded.labels, batch_size, collate, env, loaded.precision
    )
    return {"sentences": len(gold), "words": sum(len(g) for g in gold), **result}


def run(args: argparse.Namespace, env: distributed.Env) -> dict:
    """Evaluate every set on every rank; rank 0 writes the files. Returns the metrics: one
    set's at the top level, or with several sets each under "sets" and their mean on top."""
    out = sys.stderr if args.output == "-" else sys.stdout  # keep stdout for the JSON then
    loaded = trained.load(args.target, args.checkpoint, env.device)
    sets = load_sets(args, loaded)
    output = default_output(args, loaded) if args.output is None else None
    if args.output not in (None, "-"):
        output = Path(args.output)
    keep = eval_output.saved_predictions_dir(args, loaded)  # None without --save-predictions
    check_writable(args, output, env)  # before the work, not after it
    results = {name: score(args, loaded, sentences, env, out) for name, sentences, _ in sets}
    about = {
        "target": str(args.target),
        "checkpoint": loaded.checkpoint,
        "checkpoint_path": str(loaded.path),
        "epoch": loaded.epoch,
        "step": loaded.step,
        "split": None if args.data_file else args.split,  # a file is its own split
        "world_size": env.world_size,
    }
    per_set = {
        name: {
            "data": str(source),
            **{k: v for k, v in results[name].items() if k != "predictions"},
        }
        for name, _, source in sets
    }
    for name, sentences, _ in sets if args.bootstrap else ():  # every rank: the same result
        gold, pred = [s.tags for s in sentences], results[name]["predictions"]
        seed = args.bootstrap_seed
        per_set[name]["bootstrap"] = bootstrap.of_tags(gold, pred, args.bootstrap, seed)
    if len(sets) == 1:
        [metrics] = per_set.values()
        metrics = {**about, **metrics}
    else:
        means = registry.mean_over_sets(per_set)
        metrics = {**about, "data": ", ".join(per_set), **means, "sets": per_set}
    if env.is_main:
        if args.predictions:
            Path(args.predictions).parent.mkdir(parents=True, exist_ok=True)
            for name, sentences, _ in sets:
                path = Path(args.predictions)
                if len(sets) > 1:  # one file per set: p.conll -> p.he.conll
                    path = path.with_name(f"{path.stem}.{name}{path.suffix}")
                write_predictions(str(path), sentences, results[name]["predictions"])
        for name, sentences, _ in sets if keep else ():
            kept = eval_output.save_predictions(keep, args.split, name, loaded, sentences, results)
            print(f"saved predictions written to {kept}", file=out, flush=True)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            write_json(output, metrics)
        print(summary(metrics), file=out, flush=True)
        for name, r in per_set.items() if args.bootstrap else ():
            print(f"{name}: {bootstrap.interval_line(r)}", file=out, flush=True)
        for name, sentences, _ in sets if args.errors else ():
            tags, tokens = [s.tags for s in sentences], [s.tokens for s in sentences]
            analysis = error_analysis.analyse(tags, results[name]["predictions"], tokens)
            print(f"\nerrors on {name}\n\n{error_analysis.render(analysis)}", file=out, flush=True)
        for what, where in (("predictions", args.predictions), ("metrics", output)):
            if where is not None:
                print(f"{what} written to {where}", file=out, flush=True)
        if args.output == "-":
            print(json.dumps(metrics, indent=2, ensure_ascii=False), flush=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Console script `ner-evaluate`; returns the exit status (2 on a user error, 130 on Ctrl-C)."""
    args = parse_args(argv)
    hf_logging.disable_progress_bar()  # no "Loading weights" bar between results
    env = None
    try:
        env = distributed.setup(args.device)
        run(args, env)
        return 0
    except UserError as e:
        return exit_on_error(e, speak=env is None or env.is_main)
    except KeyboardInterrupt:
        return exit_on_ctrl_c("ner-evaluate", speak=env is None or env.is_main)
    finally:
        distributed.teardown()


if __name__ == "__main__":
    sys.exit(main())

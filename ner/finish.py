"""The end of a run: test evaluation of the best model (its intervals and error analysis:
ner/report/outcome.py), its saved predictions, export, model card, curves, results.png,
result.json.

The test split is scored once, with the best checkpoint's weights (chosen on validation only),
and never takes part in model selection.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf
from transformers.utils import logging as hf_logging

from ner import atomic, checkpoint, distributed, naming, sharding
from ner.checkpoint import Progress
from ner.errors import counted
from ner.metrics import names
from ner.model import build_model, encoder_family, model_config
from ner.report import outcome
from ner.report.card import render_card, without_front_matter
from ner.report.curves import plot_curves
from ner.report.history import eval_entries
from ner.report.hparams import card_hyperparameters
from ner.report.predictions import save_best as save_predictions
from ner.run.provenance import framework_versions
from ner.tokenizer import load_tokenizer


def finish(
    cfg,
    env: distributed.Env,
    prepared,
    state: checkpoint.TrainState,
    per_epoch: int,
    *,
    evaluate: Callable[[object, str], dict],
    log,
    printer,
    directory,
    stop_requests,
) -> None:
    """The run's end, after its last epoch: `prepared` as ner/prepare.py made it, the loop's
    `state` (`per_epoch` optimizer steps an epoch), `evaluate(eval_set, split)` its exact
    evaluation of the evaluated weights, its RunLog and Printer (ner/report/runlog.py), RunDir
    (ner/run/rundir.py) and StopRequests (ner/run/preemption.py). Rank 0 writes; every rank
    evaluates (the test split is sharded too)."""
    trainer, progress, run_dir = cfg.trainer, state.progress, directory.path
    # From here the evaluated weights are best.pt's, checked to be the record's best epoch.
    best_weights = state.load_best(run_dir / "checkpoints")
    test = None
    with_test = [s for s in prepared.eval_sets if "test" in s.features] if trainer.eval_test else []
    # Validation scored again by the best weights: their saved predictions (and the error
    # analysis without a test split) are then what best.pt predicts, whatever a resume did.
    validation = {s.name: evaluate(s, "validation") for s in prepared.eval_sets}
    results = {s.name: evaluate(s, "test") for s in with_test}
    errors_on = "test" if with_test else "validation"
    if with_test:
        named = len(prepared.eval_sets) > 1
        entry = log.evaluation(
            "test", progress.best_epoch, progress.global_step, results, named=named
        )
        # After the scores, in the history's own entry (RunLog keeps it): their intervals.
        gold = {s.name: s.gold["test"] for s in with_test}
        entry.update(outcome.test_intervals(results, gold, trainer.bootstrap, named))
        test = {k: v for k, v in entry.items() if k.startswith("test_")}
        scores = ", ".join(
            f"{name} {entry[f'test_{name}']:.4f}"
            for name in names()
            if name != "loss" and f"test_{name}" in entry
        )
        printer(f"test (best epoch {progress.best_epoch:g}): {scores}")
    # The best weights' word-level predictions of every set (ner/report/predictions.py).
    scored = {"validation": validation, "test": results}
    save_predictions(run_dir, prepared, scored, progress.best_epoch, env.is_main)
    sentences = {s.name: s.sentences.get(errors_on) for s in prepared.corpus.eval_sets}
    predictions = {name: r["predictions"] for name, r in scored[errors_on].items()}
    errors = outcome.errors_info(errors_on, sentences, predictions)
    seconds, n_train = progress.train_seconds, len(prepared.train)
    log.final(
        {
            "epoch": float(progress.epoch),
            "step": progress.global_step,
            "train_runtime": round(seconds, 4),
            "train_samples_per_second": round(n_train * progress.epoch / seconds, 3)
            if seconds
            else 0.0,
            "best_epoch": progress.best_epoch,
            "best_metric": progress.best,
            "monitor": trainer.monitor,
            "lr_schedule": progress.schedule,
        }
    )
    # From here the run's end is written: a signal is only noted, and the run finishes (a
    # result.json beside an error.json, or exit 75 for a finished run, would say it did not).
    stop_requests.signals_deferred = True
    if env.is_main:
        log.save()
        hf_logging.disable_progress_bar()  # no "Writing model shards" bar in the run's output
        # The best weights in a plain model (a sharded model's plain twin on the CPU).
        whole = sharding.whole_model(state.evaluated_model(), cfg.model, best_weights)
        checkpoint.export_hf(whole, prepared.tokenizer, run_dir / "best_model")  # the best weights
        info = {
            "model_name": naming.run_name(cfg),
            "base_model": cfg.model.name_or_path or "tiny XLM-R (random init)",
            "encoder": encoder_family(state.model.config),
            "dataset_name": "wikiann"
            if "wikiann" in (cfg.data.name or "")
            else prepared.corpus.source,
            "dataset_config": OmegaConf.to_container(cfg.data)["config"],
            "eval_sets": [s.name for s in prepared.eval_sets]
            if len(prepared.eval_sets) > 1
            else [],
            "hyperparameters": card_hyperparameters(
                cfg, env, progress.schedule, epochs_trained(progress, trainer, per_epoch)
            ),
            "versions": framework_versions(),
            "data_summary": "; ".join(
                f"{split}: {s.sentences} sentences, {s.words} words, {s.windows} windows"
                for split, s in prepared.stats.items()
            ),
            "errors": errors,
        }
        card = render_card(log.history, info)
        atomic.write_text(run_dir / "README.md", card, "model card")
        plot_curves(log.history, run_dir / "curves.png", info["eval_sets"])
        outcome.plot_results(log.history, errors, run_dir / "results.png", info["eval_sets"])
        log.text("model_card", without_front_matter(card))  # TensorBoard: no YAML paragraph
        final_eval = eval_entries(log.history)[-1]
        directory.finished(
            {
                "status": "finished",
                "monitor": trainer.monitor,
                "monitor_mode": str(trainer.monitor_mode),
                "best": progress.best,
                "best_epoch": progress.best_epoch,
                "final": {
                    k: v
                    for k, v in final_eval.items()
                    if k.startswith("eval_") and k != "eval_per_type"
                },
                "test": {k: v for k, v in (test or {}).items() if k != "test_per_type"} or None,
                "wall_time_s": round(progress.wall_seconds, 1),
            }
        )
        # Only once result.json says finished: a rerun then needs no checkpoint (ner/run/start.py).
        removed, freed = checkpoint.retain(run_dir / "checkpoints", str(trainer.keep_checkpoints))
        if removed:
            printer(
                f"removed {', '.join(removed)} ({atomic.human(freed)}, trainer.keep_checkpoints="
                f"{trainer.keep_checkpoints}): this run can no longer be extended"
            )
        printer(f"run directory: {run_dir}")
    log.close(finished=True)
    distributed.barrier(env)
    if stop_requests.signum:  # noted while the end was written: too late to stop, nothing to resume
        name = signal.Signals(stop_requests.signum).name
        printer(f"{name} came as the run finished: it is finished, nothing to resume")


def epochs_trained(progress: Progress, trainer, per_epoch: int) -> str:
    """How many epochs ran (`progress`, under trainer config `trainer`, `per_epoch` steps an
    epoch), and why training stopped where it did (the card's epochs_trained)."""
    patience = trainer.early_stopping_patience
    if progress.epoch < trainer.epochs:  # a finished run short of its epochs stopped early
        return (
            f"{progress.epoch:g} of {trainer.epochs}: early stopping, {trainer.monitor} did not "
            f"improve for {counted(patience, 'evaluation')}"
        )
    planned = progress.schedule[0][1] // per_epoch  # the epochs of the run's first schedule
    if len(progress.schedule) > 1:
        return (
            f"{progress.epoch:g}: a finished run of {planned} epochs extended to {trainer.epochs}"
        )
    return f"{progress.epoch:g}"


def rebuild_export(cfg, run_dir: Path, best_epoch: float | None) -> str | None:
    """A finished run's export (best_model/) that was removed is rebuilt from
    checkpoints/best.pt, checked to hold the record's `best_epoch` (rank 0, which holds the run
    directory). Returns the line saying what was done, or None when the export is there."""
    export = run_dir / "best_model"
    if (export / "config.json").is_file():
        return None
    best_pt = run_dir / "checkpoints" / "best.pt"
    if not best_pt.is_file():
        return (
            f"{export} is missing, and so is {best_pt} (trainer.keep_checkpoints="
            f"{cfg.trainer.keep_checkpoints}): the export cannot be rebuilt"
        )
    best = checkpoint.load(best_pt)
    checkpoint.check_best(best, best_pt, best_epoch)
    name = cfg.model.name_or_path
    tokenizer = load_tokenizer(run_dir / "tokenizer" if name is None else name)
    architecture = model_config(cfg.model, list(best["labels"]), tokenizer)
    model = build_model(cfg.model, architecture, cfg.seed, pretrained=False)
    model.load_state_dict(best["model"])
    hf_logging.disable_progress_bar()
    checkpoint.export_hf(model, tokenizer, export)
    return f"{export} was missing: rebuilt from {best_pt} (best epoch {best_epoch:g})"

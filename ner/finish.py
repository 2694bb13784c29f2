"""The end of a run: test evaluation of the best model, export, model card, curves, result.json.

The test split is scored once, with the best checkpoint's weights (chosen on validation only),
and never takes part in model selection.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from omegaconf import OmegaConf
from transformers.utils import logging as hf_logging

from ner import atomic, checkpoint, distributed, naming, sharding
from ner.errors import counted
from ner.metrics import names
from ner.model import encoder_family
from ner.progress import Progress
from ner.report.card import render_card, without_front_matter
from ner.report.curves import plot_curves
from ner.report.history import eval_entries
from ner.report.hparams import card_hyperparameters
from ner.run.provenance import framework_versions


def finish(
    cfg,
    env: distributed.Env,
    data,
    state: checkpoint.TrainState,
    per_epoch: int,
    *,
    evaluate: Callable[[object, str], dict],
    log,
    say,
    owner,
    stop,
) -> None:
    """The run's end, after its last epoch: `data` as ner/prepare.py made it, the loop's `state`
    (`per_epoch` optimizer steps an epoch), `evaluate(eval_set, split)` its exact evaluation, its
    RunLog and Printer (ner/report/runlog.py), RunDir (ner/run/rundir.py) and StopRequests
    (ner/run/preemption.py). Rank 0 writes; every rank evaluates (the test split is sharded too)."""
    t, p, model, run_dir = cfg.trainer, state.progress, state.model, owner.path
    best_pt = run_dir / "checkpoints" / "best.pt"
    best = checkpoint.load(best_pt)
    checkpoint.check_best(best, best_pt, p.best_epoch)
    sharding.load_model_state(model, best["model"])
    test = None
    with_test = [s for s in data.eval_sets if "test" in s.features] if t.eval_test else []
    if with_test:
        results = {s.name: evaluate(s, "test") for s in with_test}
        named = len(data.eval_sets) > 1
        entry = log.evaluation("test", p.best_epoch, p.global_step, results, named=named)
        test = {k: v for k, v in entry.items() if k.startswith("test_")}
        scores = ", ".join(
            f"{name} {entry[f'test_{name}']:.4f}"
            for name in names()
            if name != "loss" and f"test_{name}" in entry
        )
        say(f"test (best epoch {p.best_epoch:g}): {scores}")
    seconds, n_train = p.train_seconds, len(data.train)
    log.final(
        {
            "epoch": float(p.epoch),
            "step": p.global_step,
            "train_runtime": round(seconds, 4),
            "train_samples_per_second": round(n_train * p.epoch / seconds, 3) if seconds else 0.0,
            "best_epoch": p.best_epoch,
            "best_metric": p.best,
            "monitor": t.monitor,
            "lr_schedule": p.schedule,
        }
    )
    # From here the run's end is written: a signal is only noted, and the run finishes (a
    # result.json beside an error.json, or exit 75 for a finished run, would say it did not).
    stop.deferred = True
    if env.is_main:
        log.save()
        hf_logging.disable_progress_bar()  # no "Writing model shards" bar in the run's output
        whole = sharding.whole_model(model, cfg.model, best["model"])  # sharded: a plain twin
        checkpoint.export_hf(whole, data.tokenizer, run_dir / "best_model")  # the best weights
        info = {
            "model_name": naming.run_name(cfg),
            "base_model": cfg.model.name_or_path or "tiny XLM-R (random init)",
            "encoder": encoder_family(model.config),
            "dataset_name": "wikiann" if "wikiann" in (cfg.data.name or "") else data.corpus.source,
            "dataset_config": OmegaConf.to_container(cfg.data)["config"],
            "eval_sets": [s.name for s in data.eval_sets] if len(data.eval_sets) > 1 else [],
            "hyperparameters": card_hyperparameters(
                cfg, env, p.schedule, epochs_trained(p, t, per_epoch)
            ),
            "versions": framework_versions(),
            "data_summary": "; ".join(
                f"{split}: {s.sentences} sentences, {s.words} words, {s.windows} windows"
                for split, s in data.stats.items()
            ),
        }
        card = render_card(log.history, info)
        atomic.write_text(run_dir / "README.md", card, "model card")
        plot_curves(log.history, run_dir / "curves.png", info["eval_sets"])
        log.text("model_card", without_front_matter(card))  # TensorBoard: no YAML paragraph
        final_eval = eval_entries(log.history)[-1]
        owner.finished(
            {
                "status": "finished",
                "monitor": t.monitor,
                "monitor_mode": str(t.monitor_mode),
                "best": p.best,
                "best_epoch": p.best_epoch,
                "final": {
                    k: v
                    for k, v in final_eval.items()
                    if k.startswith("eval_") and k != "eval_per_type"
                },
                "test": {k: v for k, v in (test or {}).items() if k != "test_per_type"} or None,
                "wall_time_s": round(p.wall_seconds, 1),
            }
        )
        # Only once result.json says finished: a rerun then needs no checkpoint (ner/run/start.py).
        removed, freed = checkpoint.retain(run_dir / "checkpoints", str(t.keep_checkpoints))
        if removed:
            say(
                f"removed {', '.join(removed)} ({atomic.human(freed)}, trainer.keep_checkpoints="
                f"{t.keep_checkpoints}): this run can no longer be extended"
            )
        say(f"run directory: {run_dir}")
    log.close(finished=True)
    distributed.barrier(env)
    if stop.signum:  # noted while the end was written: too late to stop, nothing to resume
        name = signal.Signals(stop.signum).name
        say(f"{name} came as the run finished: it is finished, nothing to resume")


def epochs_trained(p: Progress, t, per_epoch: int) -> str:
    """How many epochs ran (`p`, under trainer config `t`, `per_epoch` steps an epoch), and why
    training stopped where it did (the card's epochs_trained)."""
    if p.epoch < t.epochs:
        return (
            f"{p.epoch:g} of {t.epochs}: early stopping, {t.monitor} did not improve for "
            f"{counted(t.early_stopping_patience, 'evaluation')}"
        )
    planned = p.schedule[0][1] // per_epoch  # the epochs of the run's first schedule
    if len(p.schedule) > 1:
        return f"{p.epoch:g}: a finished run of {planned} epochs extended to {t.epochs}"
    return f"{p.epoch:g}"

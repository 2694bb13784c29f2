"""The end of a run: test evaluation of the best model, export, model card, curves, result.json.

The test split is scored once, with the best checkpoint's weights (chosen on validation only),
and never takes part in model selection.
"""

from __future__ import annotations

from transformers.utils import logging as hf_logging

from ner import atomic, checkpoint, config, distributed
from ner.card import render_card
from ner.curves import plot_curves
from ner.evaluate import evaluate
from ner.rundir import RunDir, framework_versions


def schedule_text(schedule: list[list[int]]) -> str:
    """Which steps ran under which linear schedule, when a finished run was extended."""
    parts = []
    for k, (first, total) in enumerate(schedule):
        last = schedule[k + 1][0] if k + 1 < len(schedule) else total
        parts.append(f"steps {first + 1}-{last} decay linearly to 0 at step {total}")
    return "; ".join(parts)


def hyperparameters(cfg, env: distributed.Env, schedule: list[list[int]] | None = None) -> dict:
    """The card's hyperparameter list, in the reference card's order and wording."""
    t, o = cfg.trainer, cfg.optim
    extended = {"lr_scheduler_segments": schedule_text(schedule)} if len(schedule or []) > 1 else {}
    return {
        "learning_rate": o.lr,
        "train_batch_size": t.batch_size,
        "eval_batch_size": t.eval_batch_size,
        "seed": cfg.seed,
        "distributed_type": "multi-GPU"
        if env.distributed and env.device.type == "cuda"
        else "multi-process (gloo)"
        if env.distributed
        else "single process",
        "num_processes": env.world_size,
        "gradient_accumulation_steps": t.grad_accum_steps,
        "total_train_batch_size": t.batch_size * env.world_size * t.grad_accum_steps,
        "optimizer": f"Adam with betas=({o.betas[0]},{o.betas[1]}) and epsilon={o.eps}"
        + (f", decoupled weight decay {o.weight_decay}" if o.weight_decay else ""),
        "lr_scheduler_type": "linear",
        "lr_scheduler_warmup_steps": o.warmup_steps,
        **extended,
        "num_epochs": t.epochs,
        "precision": t.precision,
        "max_grad_norm": o.max_grad_norm,
    }


def finish(
    cfg, env, owner: RunDir, run, model, log, progress: dict, n_train: int, collate, say
) -> None:
    """Rank 0 writes; every rank evaluates."""
    t, run_dir = cfg.trainer, owner.path
    best_path = run_dir / "checkpoints" / "best.pt"
    best = checkpoint.load(best_path)  # every rank: the test split is sharded too
    model.load_state_dict(best["model"])
    test = None
    if t.eval_test and run.gold.get("test"):
        result = evaluate(
            model,
            run.features["test"],
            run.gold["test"],
            run.labels,
            t.eval_batch_size,
            collate,
            env,
            t.precision,
        )
        entry = log.evaluation("test", progress["best_epoch"], progress["global_step"], result)
        test = {k: v for k, v in entry.items() if k.startswith("test_")}
        say(
            f"test (best epoch {progress['best_epoch']:g}): precision {result['precision']:.4f}, "
            f"recall {result['recall']:.4f}, F1 {result['f1']:.4f}, accuracy {result['accuracy']:.4f}"
        )
    seconds = progress["train_seconds"]
    log.final(
        {
            "epoch": float(progress["epoch"]),
            "step": progress["global_step"],
            "train_runtime": round(seconds, 4),
            "train_samples_per_second": round(n_train * progress["epoch"] / seconds, 3)
            if seconds
            else 0.0,
            "best_epoch": progress["best_epoch"],
            "best_metric": progress["best"],
            "monitor": t.monitor,
            "lr_schedule": progress["schedule"],
        }
    )
    if env.is_main:
        log.save()
        hf_logging.disable_progress_bar()  # no "Writing model shards" bar in the run's output
        checkpoint.export_hf(
            model, run.tokenizer, run_dir / "best_model"
        )  # best weights, loaded above
        info = {
            "model_name": config.run_name(cfg),
            "base_model": cfg.model.name_or_path or "tiny XLM-R (random init)",
            "dataset_name": "wikiann" if "wikiann" in (cfg.data.name or "") else run.splits.source,
            "dataset_config": cfg.data.config,
            "hyperparameters": hyperparameters(cfg, env, progress["schedule"]),
            "versions": framework_versions(),
            "data_summary": "; ".join(
                f"{split}: {s.sentences} sentences, {s.words} words, {s.windows} windows"
                for split, s in run.stats.items()
            ),
        }
        card = render_card(log.history, info)
        atomic.write_text(run_dir / "README.md", card, "model card")
        plot_curves(log.history, run_dir / "curves.png")
        log.text("model_card", card)
        final_eval = [e for e in log.history if "eval_f1" in e][-1]
        owner.finished(
            {
                "status": "finished",
                "monitor": t.monitor,
                "best": progress["best"],
                "best_epoch": progress["best_epoch"],
                "final": {
                    k: v
                    for k, v in final_eval.items()
                    if k.startswith("eval_") and k != "eval_per_type"
                },
                "test": {k: v for k, v in (test or {}).items() if k != "test_per_type"} or None,
                "wall_time_s": round(progress["wall_seconds"], 1),
            },
        )
        say(f"run directory: {run_dir}")
    log.close(finished=True)
    distributed.barrier(env)

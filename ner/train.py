"""The training loop.

    python -m ner.train                                          # the demo, one process
    torchrun --standalone --nproc_per_node=2 -m ner.train         # the same on 2 processes
    torchrun --nproc_per_node=N -m ner.train experiment=wikiann_he_card

ner/run/cli.py (the command line, Hydra) joins the process group and calls `train`, as tests do. A
run takes its directory and decides where it starts (ner/run/rundir.py); then: set up data, model,
optimizer, schedule (restore a checkpoint); per epoch, optimizer steps (`train_step`: gradients
synced on the last micro-batch only, by DDP or FSDP: ner/sharding.py; the loss over the step's
labelled tokens of every rank, clip, step, schedule) and the epoch's end (evaluate on every rank,
log, keep the best, checkpoint); then `finish`. A signal stops every rank after one step.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from ner import distributed, sharded_checkpoint, sharding
from ner.batching import Collator, EpochSteps, epoch_plan, epoch_selection, steps_per_epoch
from ner.checkpoint import reconcile_best
from ner.data.corpus import training_sets
from ner.errors import counted
from ner.evaluate import evaluate, training_mean
from ner.finish import finish
from ner.loss import LossTracker, loss_step, step_tokens
from ner.metrics import names
from ner.optimization import follow, logged_lr
from ner.prepare import on_device, prepare, training_state
from ner.progress import Stopwatch
from ner.report.hparams import dashboard_hyperparameters, recipe_summary
from ner.report.runlog import Printer, RunLog, progress_line
from ner.rng import rng_state
from ner.run import checks, resumable, rundir
from ner.run.preemption import StopRequests
from ner.tokenizer import save_tokenizer


def train(cfg: DictConfig, env: distributed.Env, run_dir: Path) -> float | None:
    """Train and evaluate in `run_dir`; return the best value of trainer.monitor.

    A refused run writes nothing in `run_dir` (ner/run/rundir.py). Returns None when
    trainer.stop_after_steps cut the run short; raises `Interrupted` when a signal stopped it
    (after a checkpoint at that step).
    """
    checks.check(cfg)
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    with StopRequests() as stop, rundir.RunDir(run_dir, env) as owner:
        start = owner.start(cfg)
        if start.kind == "finished":
            if env.is_main:  # rank 0 holds the checkpoint
                print(resumable.nothing_to_do(cfg, start, run_dir), flush=True)
            return start.result.get("best")
        # Everything that can refuse the run comes before it is accepted: a refusal leaves the
        # run directory as it was (no directory at all when this run would have made it).
        say = Printer(owner.path, env.is_main)
        data = prepare(cfg, env, owner.path, say, resume=start.kind == "resume")
        per_epoch = steps_per_epoch(
            len(data.train), cfg.trainer.batch_size, env.world_size, cfg.trainer.grad_accum_steps
        )
        checks.check_schedule(cfg, per_epoch * cfg.trainer.epochs)
        if start.kind == "resume":  # onto the data it was trained on (ner/run/resumable.py)
            owner.check_data(cfg, start, data.corpus.fingerprints)
        owner.accept(cfg, start)
        say.open()
        if data.trained_tokenizer and env.is_main:
            save_tokenizer(data.tokenizer, owner.path / "tokenizer")
        return TrainingRun(cfg, env, owner, stop, data, say, per_epoch).run(start)


class TrainingRun:
    """One attempt at a run: what the loop holds, and the loop. It runs in the directory `owner`
    holds (ner/run/rundir.py), stops at `stop`'s requests (ner/run/preemption.py), trains on
    `data` (ner/prepare.py), `per_epoch` optimizer steps an epoch, and speaks with `say`."""

    def __init__(self, cfg: DictConfig, env: distributed.Env, owner, stop, data, say, per_epoch):
        self.cfg, self.env, self.owner, self.stop = cfg, env, owner, stop
        self.t, device = cfg.trainer, env.device
        self.started, self.wall_before = time.time(), 0.0
        self.say, self.data = say, data  # data, tokenizer, features, model (ner/prepare.py)
        self.wrapped, self.forward = on_device(self.data.model, env, self.t)  # DDP/FSDP, compiled
        self.lengths = [len(f["input_ids"]) for f in self.data.train]
        self.per_epoch = per_epoch  # optimizer steps per epoch, computed (and checked) by train()
        self.total_steps = self.per_epoch * self.t.epochs
        # Model, optimizer, schedule, grad scaler, progress: a resume restores into them.
        self.state = training_state(cfg, self.data, self.total_steps, device)
        self.collate = Collator.for_device(self.data.tokenizer, device)
        self.losses = LossTracker(device, weighted=data.objective.weights is not None)
        self.saved_at = -1  # the global step of the newest checkpoint

    def run(self, start: rundir.Start) -> float | None:
        resumed = start.kind == "resume"
        if resumed:
            self.restore(start)
        p, t = self.state.progress, self.t
        purge = p.global_step + 1 if resumed else None  # drop events logged after the checkpoint
        self.log = RunLog(self.owner.path, self.env.is_main, self.state.history, purge)
        self.log.hparams(dashboard_hyperparameters(self.cfg, self.env), t.monitor)
        self.log.set_layout([s.name for s in self.data.eval_sets])
        env = self.env
        self.say(
            f"world size {env.world_size} x per-rank batch {t.batch_size} x accumulation "
            f"{t.grad_accum_steps} = global batch {t.batch_size * env.world_size * t.grad_accum_steps}"
            f"; {len(self.lengths)} training windows, {self.per_epoch} steps per epoch, "
            f"{self.total_steps} steps in {counted(t.epochs, 'epoch')}; device {env.device}"
            + sharding.described(t.strategy, env)
            + (f"; resuming after {p.position(t.epochs)}" if resumed else "")
        )
        self.say(recipe_summary(self.cfg))
        self.clock = Stopwatch(p, self.wall_before, self.started)  # training and wall time
        self.state.model.train()
        self.stop.deferred = True  # from here a signal stops the run at the next step boundary
        cut_short = False
        for epoch in range(p.epoch, t.epochs):
            cut_short = not self.train_epoch(epoch)
            if cut_short or self.end_of_epoch(epoch):
                break
        self.stop.deferred = False
        self.stop.settle()
        if cut_short:
            self.say(f"stopped after {p.global_step} steps (trainer.stop_after_steps)")
            self.log.close()
            self.owner.stopped_after_steps(p.global_step)
            return None
        p.wall_seconds = self.clock.wall()
        finish(
            self.cfg,
            env,
            self.data,
            self.state,
            self.per_epoch,
            evaluate=self.evaluate,
            log=self.log,
            say=self.say,
            owner=self.owner,
            stop=self.stop,
        )
        return p.best

    def restore(self, start: rundir.Start) -> None:
        self.state.restore(start.checkpoint, start.path, self.env)
        # best.pt must hold the record's best epoch (ner/checkpoint.py); rank 0 repairs it.
        directory = self.owner.path / "checkpoints"
        if repaired := reconcile_best(directory, start.checkpoint, start.path, self.env):
            self.say(repaired)
        s, p = self.state, self.state.progress
        self.saved_at = p.global_step
        name = self.cfg.optim.schedule
        if line := follow(p.schedule, s.scheduler, p.global_step, self.total_steps, name):
            self.say(f"extended to {self.t.epochs} epochs: {line}")
        # Wall time of the earlier attempts: up to their last checkpoint, or to the end of the
        # finished attempt that this one extends.
        self.wall_before = max(p.wall_seconds, (start.result or {}).get("wall_time_s", 0.0))

    def train_epoch(self, epoch: int) -> bool:
        """The epoch's optimizer steps (from where a resumed run stopped); False when
        trainer.stop_after_steps cut it short."""
        p, t, env = self.state.progress, self.t, self.env
        sizes = [n for _, n in self.data.train_sources]
        chosen = epoch_selection(sizes, self.cfg.data.sampling_alpha, self.cfg.seed, epoch)
        plan = epoch_plan(
            [self.lengths[i] for i in chosen],
            t.batch_size,
            env.world_size,
            t.grad_accum_steps,
            self.cfg.seed,
            epoch,
            t.group_by_length,
        )
        features = [self.data.train[i] for i in chosen]
        steps = EpochSteps(features, plan, env.rank, self.collate)
        loader = steps.loader(p.step_in_epoch, t.num_workers, env.device.type == "cuda")
        desc = f"epoch {epoch + 1}/{t.epochs}"
        bar = self.say.progress(len(plan), p.step_in_epoch, desc, t.progress)
        self.clock.start()
        completed = True
        for micro_batches in loader:
            self.train_step(micro_batches)
            bar.update(1)
            self.after_step(bar)
            if t.stop_after_steps and p.global_step >= t.stop_after_steps:
                completed = False
                break
        self.clock.stop()
        bar.close()
        return completed

    def train_step(self, micro_batches: list[dict]) -> None:
        """One optimizer step over this rank's micro-batches of it."""
        env, s = self.env, self.state
        micro_batches = [
            {k: v.to(env.device, non_blocking=True) for k, v in b.items()} for b in micro_batches
        ]
        o = self.data.objective  # the loss (ner/loss.py), normalised by the labelled tokens
        n_step = step_tokens(micro_batches, env, o.weights)  # of the step, every rank's
        for j, batch in enumerate(micro_batches):
            last = j == len(micro_batches) - 1
            with sharding.sync_gradients(self.wrapped, last, env):
                _, loss_sum = loss_step(self.forward, batch, env.device, self.t.precision, o)
                # DDP and FSDP average gradients over ranks; scaling by the world size makes the
                # update the mean over the step's global labelled tokens.
                s.scaler.scale(loss_sum * env.world_size / n_step).backward()
            self.losses.add(loss_sum)
        self.losses.step_done(s.progress.global_step + 1, n_step)
        if self.cfg.optim.max_grad_norm > 0:
            s.scaler.unscale_(s.optimizer)
            sharding.clip_gradients(s.model, self.cfg.optim.max_grad_norm)
        s.scaler.step(s.optimizer)
        s.scaler.update()
        s.scheduler.step()
        s.optimizer.zero_grad(set_to_none=True)
        s.progress.global_step += 1
        s.progress.step_in_epoch += 1

    def after_step(self, bar) -> None:
        """Log every trainer.log_every steps, checkpoint every save_every_steps, stop if asked."""
        p, t = self.state.progress, self.t
        if p.global_step % t.log_every == 0:
            loss = self.losses.window_mean(p, self.env)
            lr = logged_lr(self.state.scheduler, self.cfg.optim.lr)
            self.log.train(p.global_step, p.epochs_done(self.per_epoch), loss, lr)
            bar.set_postfix(loss=f"{loss:.4f}")
            self.say.step(self.progress_line(loss, lr), t.progress)
        if t.save_every_steps and p.global_step % t.save_every_steps == 0:
            self.clock.stop()
            self.save()
            self.clock.start()
        self.stop_if_asked()

    def progress_line(self, loss: float, lr: float) -> str:
        p, t, clock = self.state.progress, self.t, self.clock
        batch = t.batch_size * self.env.world_size * t.grad_accum_steps
        return progress_line(
            p.global_step,
            self.total_steps,
            p.epochs_done(self.per_epoch),
            t.epochs,
            loss,
            lr,
            clock.steps_per_second(),
            batch,
            clock.wall(),
        )

    def end_of_epoch(self, epoch: int) -> bool:
        """Evaluate, log, keep the best, checkpoint; True when early stopping ends the run."""
        p, t = self.state.progress, self.t
        train_loss = self.losses.epoch_mean(p, self.env)
        results = {s.name: self.evaluate(s, "validation") for s in self.data.eval_sets}
        extra = {"train_loss": train_loss, **training_mean(results, training_sets(self.cfg.data))}
        entry = self.log.evaluation("eval", float(epoch + 1), p.global_step, results, extra)
        improved = p.evaluated(entry[t.monitor], epoch + 1, t.monitor_mode)
        self.log.best_so_far(epoch + 1, t.monitor, p.best)
        p.epoch, p.step_in_epoch = epoch + 1, 0
        scores = ", ".join(f"{name} {entry[f'eval_{name}']:.4f}" for name in names())
        if len(results) > 1:  # the plain scores are the mean over the sets
            scores += "; f1 by set " + ", ".join(f"{s} {r['f1']:.4f}" for s, r in results.items())
        best = " (best)" if improved else ""
        self.say(f"epoch {epoch + 1}: train loss {train_loss:.4f}, eval {scores}{best}")
        self.log.save()
        self.save(best_improved=improved)
        self.stop_if_asked()
        patience = t.early_stopping_patience
        if patience and p.evals_without_improvement >= patience:
            self.say(
                f"early stopping: {t.monitor} did not improve for {counted(patience, 'evaluation')}"
            )
            return True
        return False

    def evaluate(self, eval_set, split: str) -> dict:
        """Exact evaluation of the model on a set's split, sharded over every rank."""
        t = self.t
        return evaluate(
            self.state.model,
            eval_set.features[split],
            eval_set.gold[split],
            self.data.labels,
            t.eval_batch_size,
            self.collate,
            self.env,
            t.precision,
        )

    def save(self, best_improved: bool = False) -> None:
        """Checkpoint on rank 0 (collectives first: every rank's RNG, a sharded model's shards)."""
        p, s, directory = self.state.progress, self.state, self.owner.path / "checkpoints"
        self.losses.fold_into(p, self.env)  # first: a non-finite loss stops before any save
        rngs = distributed.all_gather_objects(rng_state(self.env.device), self.env)
        self.owner.ensure_owned()  # rank 0 holds the lock: checked before any rank writes
        states = sharded_checkpoint.states(s, directory, best_improved, self.env)  # every rank
        p.wall_seconds = self.clock.wall()
        if self.env.is_main:
            keep = self.t.keep_last if self.t.save_every_steps else 0
            s.save(directory, rngs, best_improved, keep, *states)
        distributed.barrier(self.env)
        self.saved_at = p.global_step

    def stop_if_asked(self) -> None:
        """A collective at a step boundary: when any rank got a stop signal, all save and stop."""
        signum = self.stop.agreed(self.env)
        if not signum:
            return
        self.stop.settle()
        p = self.state.progress
        if self.saved_at != p.global_step:
            self.clock.stop()
            self.save()
        last = self.owner.path / "checkpoints" / "last.pt"
        raise self.stop.interrupted(
            f"after {p.position(self.t.epochs)}; the checkpoint "
            f"{last} resumes there: run the same command (with hydra.run.dir={self.owner.path})",
            signum,
            global_step=p.global_step,
            epoch=p.epochs_done(self.per_epoch),
        )


if __name__ == "__main__":
    from ner.run.cli import main

    main()

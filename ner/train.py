"""The training loop.

    python -m ner.train                                          # the demo, one process
    torchrun --standalone --nproc_per_node=2 -m ner.train         # the same on 2 processes
    torchrun --nproc_per_node=N -m ner.train experiment=wikiann_he_card

`main` (the command line, Hydra: ner/run/cli.py) joins the process group and calls `train`, as tests do. A
run takes its directory and decides where it starts (ner/run/rundir.py); then: set up data, model,
optimizer, schedule (restore a checkpoint); per epoch, optimizer steps (`train_step`: gradients
synced on the last micro-batch only, by DDP or FSDP: ner/sharding.py; the loss over the step's
labelled tokens of every rank, clip, step, schedule) and the epoch's end (evaluate on every rank,
log, keep the best, checkpoint); then `finish`. A signal stops every rank after one step.
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from ner import distributed, sharding, step_graphs
from ner.batching import (
    Collator,
    EpochSteps,
    epoch_plan,
    epoch_selection,
    steps_per_epoch,
    to_device,
)
from ner.checkpoint import Progress, reconcile_best
from ner.data.corpus import training_sets
from ner.errors import UserError, counted
from ner.evaluate import evaluate, training_mean
from ner.finish import finish, rebuild_export
from ner.loss import LossTracker, loss_step, step_tokens
from ner.metrics import names
from ner.optimization import extend_schedule, logged_lr
from ner.prepare import (
    EncodedSet,
    Prepared,
    compile_plan,
    compiled,
    on_device,
    prepare,
    training_state,
)
from ner.report.hparams import dashboard_hyperparameters, recipe_summary
from ner.report.runlog import Printer, RunLog, progress_line
from ner.run import checks, cli, rundir
from ner.run import start as start_rules
from ner.run.preemption import Interrupted, StopRequests
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
    with StopRequests() as stop_requests, rundir.RunDir(run_dir, env) as directory:
        start = directory.start(cfg)
        if start.kind == "finished":
            if env.is_main:  # rank 0 holds the checkpoint
                print(start_rules.nothing_to_do(cfg, start, run_dir), flush=True)
                if repaired := rebuild_export(cfg, run_dir, start.result.get("best_epoch")):
                    print(repaired, flush=True)
            return start.result.get("best")
        # Everything that can refuse the run comes before it is accepted: a refusal leaves the
        # run directory as it was (no directory at all when this run would have made it).
        printer = Printer(directory.path, env.is_main)
        resumed_from = start.path if start.kind == "resume" else None
        prepared = prepare(cfg, env, directory.path, printer, resumed_from)
        per_epoch = steps_per_epoch(
            len(prepared.train),
            cfg.trainer.batch_size,
            env.world_size,
            cfg.trainer.grad_accum_steps,
        )
        checks.check_schedule(cfg, per_epoch * cfg.trainer.epochs)
        if start.kind == "resume":  # onto the data it was trained on (ner/run/start.py)
            directory.check_data(cfg, start, prepared.corpus.fingerprints)
        directory.accept(cfg, start)
        printer.open()
        if prepared.save_tokenizer and env.is_main:
            save_tokenizer(prepared.tokenizer, directory.path / "tokenizer")
        run = TrainingRun(cfg, env, directory, stop_requests, prepared, printer, per_epoch)
        return run.run(start)


class Stopwatch:
    """The run's time, one account: the training seconds, counted from `start` to `stop` and
    folded into the progress's train_seconds at each stop (evaluation and checkpoints are not
    counted, a checkpoint holds the time up to it), and the wall seconds over every attempt."""

    def __init__(self, progress: Progress, wall_before: float, started: float):
        self.progress = progress
        self.since: float | None = None  # perf_counter() at start; None while stopped
        self.wall_before, self.started = wall_before, started  # earlier attempts; time.time()
        self.first = (progress.global_step, progress.train_seconds)  # this attempt's rate
        self.last_log = self.first  # the rate between two logs

    def start(self) -> None:
        self.since = time.perf_counter()

    def stop(self) -> None:
        assert self.since is not None, "the stopwatch was not running"
        self.progress.train_seconds += time.perf_counter() - self.since
        self.since = None

    def elapsed(self) -> float:
        """The training seconds so far, the running stretch included."""
        running = 0.0 if self.since is None else time.perf_counter() - self.since
        return self.progress.train_seconds + running

    def steps_per_second(self) -> float:
        """This attempt's optimizer steps per training second so far."""
        return _rate(self.first, self.now())

    def steps_per_second_since_last_log(self) -> float:
        """Optimizer steps per training second since the previous call: the throughput of the
        steps between two train logs (a log reads the loss from the device first, so the steps
        it counts have run)."""
        now = self.now()
        rate, self.last_log = _rate(self.last_log, now), now
        return rate

    def now(self) -> tuple[int, float]:
        """(global step, training seconds) at this moment."""
        return self.progress.global_step, self.elapsed()

    def wall(self) -> float:
        """Wall seconds over every attempt: the earlier ones' and this one's so far."""
        return self.wall_before + time.time() - self.started


def _rate(start: tuple[int, float], end: tuple[int, float]) -> float:
    """Optimizer steps per training second between two (global step, training seconds)."""
    seconds = end[1] - start[1]
    return (end[0] - start[0]) / seconds if seconds > 0 else 0.0


class TrainingRun:
    """One attempt at a run: what the loop holds, and the loop. It runs in the run directory
    `directory` (ner/run/rundir.py: the lock, acceptance, result.json), stops at
    `stop_requests` (signals, ner/run/preemption.py), trains on `prepared` (ner/prepare.py:
    data, tokenizer, features, objective), `per_epoch` optimizer steps an epoch, and prints with
    `printer` (ner/report/runlog.py)."""

    def __init__(
        self,
        cfg: DictConfig,
        env: distributed.Env,
        directory: rundir.RunDir,
        stop_requests: StopRequests,
        prepared: Prepared,
        printer: Printer,
        per_epoch: int,
    ):
        self.cfg, self.env, self.directory = cfg, env, directory
        self.stop_requests, self.prepared, self.printer = stop_requests, prepared, printer
        self.started, self.wall_before = time.time(), 0.0
        self.lengths = [len(f["input_ids"]) for f in prepared.train]
        self.per_epoch = per_epoch  # optimizer steps per epoch, computed (and checked) by train()
        self.total_steps = per_epoch * cfg.trainer.epochs
        # The model as training calls it: wrapped for gradient sync (DDP; FSDP shards it in
        # place, so this comes before the optimizer takes its parameters), and the callable of
        # the forward pass (compiled under trainer.compile).
        compile_mode, compile_words = compile_plan(cfg.trainer, env)
        graphs, self.execution_words = step_graphs.plan_words(cfg.trainer, env, compile_words)
        # A step replayed from a CUDA graph holds its forward: compiled in mode default (the
        # compiler's kernels, none of its own graphs) under trainer.compile=true, else eager.
        train_mode = ("default" if cfg.trainer.compile else None) if graphs else compile_mode
        self.synced_model, self.forward = on_device(prepared.model, env, cfg.trainer, train_mode)
        # The one training state (ner/checkpoint.py): model, optimizer, schedule, grad scaler,
        # progress, history; a resume restores into it, every checkpoint is its record. From
        # here the loop reaches the model through it alone.
        self.state = training_state(cfg, prepared, self.total_steps, env.device)
        self.step_graphs = (
            step_graphs.StepGraphs(self.step_on_device, self.state.optimizer, env.device)
            if graphs
            else None
        )
        # Evaluation calls the evaluated weights through the same compilation (eval mode and no
        # gradient are graphs of their own), or the same graphs; a sharded model is evaluated
        # eagerly in lockstep.
        evaluated = self.state.evaluated_model()
        if graphs:
            self.evaluate_forward = step_graphs.ForwardGraphs(compiled(evaluated, train_mode))
        else:
            eval_mode = None if sharding.is_sharded(evaluated) else compile_mode
            self.evaluate_forward = compiled(evaluated, eval_mode)
        self.collate = Collator.for_device(
            prepared.tokenizer, env.device, cfg.trainer.length_buckets, prepared.max_length
        )
        self.losses = LossTracker(env.device, weighted=prepared.objective.weights is not None)
        self.saved_at = -1  # the global step of the newest checkpoint

    def run(self, start: rundir.Start) -> float | None:
        trainer, env = self.cfg.trainer, self.env
        resumed = start.kind == "resume"
        if resumed:
            self.restore(start)
        progress = self.state.progress
        purge = progress.global_step + 1 if resumed else None  # drop events after the checkpoint
        self.log = RunLog(self.directory.path, env.is_main, self.state.history, purge)
        self.log.hparams(dashboard_hyperparameters(self.cfg, env), trainer.monitor)
        self.log.set_layout([s.name for s in self.prepared.eval_sets])
        global_batch = trainer.batch_size * env.world_size * trainer.grad_accum_steps
        self.printer(
            f"world size {env.world_size} x per-rank batch {trainer.batch_size} x accumulation "
            f"{trainer.grad_accum_steps} = global batch {global_batch}"
            f"; {len(self.lengths)} training windows, {self.per_epoch} steps per epoch, "
            f"{self.total_steps} steps in {counted(trainer.epochs, 'epoch')}; device {env.device}"
            + sharding.described(trainer.strategy, env)
            + f"; {self.execution_words}"
            + (f"; resuming after {progress.position(trainer.epochs)}" if resumed else "")
        )
        self.printer(recipe_summary(self.cfg))
        self.clock = Stopwatch(progress, self.wall_before, self.started)  # training, wall time
        self.state.model.train()
        # From here a signal stops the run at the next step boundary.
        self.stop_requests.signals_deferred = True
        cut_short = False
        for epoch in range(progress.epoch, trainer.epochs):
            cut_short = not self.train_epoch(epoch)
            if cut_short or self.end_of_epoch(epoch):
                break
        self.stop_requests.signals_deferred = False
        self.stop_requests.await_agreement()
        if cut_short:
            self.printer(f"stopped after {progress.global_step} steps (trainer.stop_after_steps)")
            self.log.close()
            self.directory.stopped_after_steps(progress.global_step)
            return None
        progress.wall_seconds = self.clock.wall()
        finish(
            self.cfg,
            env,
            self.prepared,
            self.state,
            self.per_epoch,
            evaluate=self.evaluate,
            log=self.log,
            printer=self.printer,
            directory=self.directory,
            stop_requests=self.stop_requests,
        )
        return progress.best

    def restore(self, start: rundir.Start) -> None:
        self.state.restore(start.checkpoint, start.path, self.env)
        # best.pt must hold the record's best epoch (ner/checkpoint.py); rank 0 repairs it.
        checkpoints = self.directory.path / "checkpoints"
        if repaired := reconcile_best(checkpoints, start.checkpoint, start.path, self.env):
            self.printer(repaired)
        progress = self.state.progress
        self.saved_at = progress.global_step
        schedule = self.cfg.optim.schedule
        extended = extend_schedule(
            progress.schedule,
            self.state.scheduler,
            progress.global_step,
            self.total_steps,
            schedule,
        )
        if extended:
            self.printer(f"extended to {self.cfg.trainer.epochs} epochs: {extended}")
        # Wall time of the earlier attempts: up to their last checkpoint, or to the end of the
        # finished attempt that this one extends.
        self.wall_before = max(progress.wall_seconds, (start.result or {}).get("wall_time_s", 0.0))

    def train_epoch(self, epoch: int) -> bool:
        """The epoch's optimizer steps (from where a resumed run stopped); False when
        trainer.stop_after_steps cut it short."""
        trainer, env, progress = self.cfg.trainer, self.env, self.state.progress
        sizes = [n for _, n in self.prepared.train_sources]
        chosen = epoch_selection(sizes, self.cfg.data.sampling_alpha, self.cfg.seed, epoch)
        plan = epoch_plan(
            [self.lengths[i] for i in chosen],
            trainer.batch_size,
            env.world_size,
            trainer.grad_accum_steps,
            self.cfg.seed,
            epoch,
            trainer.group_by_length,
        )
        features = [self.prepared.train[i] for i in chosen]
        steps = EpochSteps(features, plan, env.rank, self.collate)
        # A resumed run starts at the step after its checkpoint: the plan is the same on any
        # attempt (seed, epoch), so the batches are those the run never stopped would see.
        loader = steps.loader(
            progress.step_in_epoch, trainer.num_workers, env.device.type == "cuda"
        )
        desc = f"epoch {epoch + 1}/{trainer.epochs}"
        bar = self.printer.progress(len(plan), progress.step_in_epoch, desc, trainer.progress)
        self.clock.start()
        completed = True
        for micro_batches in loader:
            self.train_step(micro_batches)
            bar.update(1)
            self.after_step(bar)
            if progress.step_limit_reached(trainer.stop_after_steps):
                completed = False
                break
        self.clock.stop()
        bar.close()
        return completed

    def train_step(self, micro_batches: list[dict]) -> None:
        """One optimizer step over this rank's micro-batches of it: the work on the device
        (`step_on_device`, or under trainer.step_graphs the same replayed from a CUDA graph:
        ner/step_graphs.py), then the schedule and the count, on the host."""
        step = self.state.progress.global_step + 1
        if self.step_graphs is not None:  # one micro-batch a step (step_graphs.unserved)
            self.step_graphs(micro_batches[0], step)
        else:
            self.step_on_device([to_device(self.env.device, b) for b in micro_batches], step)
        self.state.advance()

    def step_on_device(self, micro_batches: list[dict], step: int | torch.Tensor) -> None:
        """Optimizer step `step` (its number, or a device tensor that holds it) on this rank's
        micro-batches (on the device): forward, backward, update. Nothing here waits for the
        host, so a CUDA graph can hold it."""
        env, state, objective = self.env, self.state, self.prepared.objective
        # The loss is normalised by the labelled tokens of the whole step, every rank's
        # (ner/loss.py), so the update does not depend on how the step is split over ranks.
        n_step = step_tokens(micro_batches, env, objective.weights)
        for j, batch in enumerate(micro_batches):
            last = j == len(micro_batches) - 1
            # Under torch.compile's CUDA graphs (trainer.compile) a new forward may reuse the
            # last one's output memory: the previous micro-batch's outputs are done with.
            torch.compiler.cudagraph_mark_step_begin()
            with sharding.sync_gradients(self.synced_model, last, env):
                _, loss_sum = loss_step(
                    self.forward, batch, env.device, self.cfg.trainer.precision, objective
                )
                # DDP and FSDP average gradients over ranks; scaling by the world size makes the
                # update the mean over the step's global labelled tokens.
                state.scaler.scale(loss_sum * env.world_size / n_step).backward()
            self.losses.add(loss_sum)
        self.losses.step_done(step, n_step)
        state.update_weights(self.cfg.optim.max_grad_norm)  # clip, step, clear the gradients
        # (it returns the gradient norm before clipping, on the device: a scalar to log)

    def after_step(self, bar) -> None:
        """Log every trainer.log_every steps, checkpoint every save_every_steps, stop if asked."""
        trainer, progress = self.cfg.trainer, self.state.progress
        if progress.global_step % trainer.log_every == 0:
            loss = self.losses.window_mean(progress, self.env)
            lr = logged_lr(self.state.scheduler, self.cfg.optim.lr)
            rate = self.clock.steps_per_second_since_last_log()  # TensorBoard's throughput curve
            epochs = progress.epochs_done(self.per_epoch)
            self.log.train(progress.global_step, epochs, loss, lr, steps_per_second=round(rate, 3))
            bar.set_postfix(loss=f"{loss:.4f}")
            self.printer.step(self.progress_line(loss, lr), trainer.progress)
        if trainer.save_every_steps and progress.global_step % trainer.save_every_steps == 0:
            self.clock.stop()
            self.save()
            self.clock.start()
        self.stop_if_asked()

    def progress_line(self, loss: float, lr: float) -> str:
        trainer, progress = self.cfg.trainer, self.state.progress
        return progress_line(
            progress.global_step,
            self.total_steps,
            progress.epochs_done(self.per_epoch),
            trainer.epochs,
            loss,
            lr,
            self.clock.steps_per_second(),
            trainer.batch_size * self.env.world_size * trainer.grad_accum_steps,
            self.clock.wall(),
        )

    def end_of_epoch(self, epoch: int) -> bool:
        """Evaluate, log, keep the best, checkpoint; True when early stopping ends the run."""
        trainer, progress = self.cfg.trainer, self.state.progress
        train_loss = self.losses.epoch_mean(progress, self.env)
        results = {s.name: self.evaluate(s, "validation") for s in self.prepared.eval_sets}
        extra = {
            "train_loss": train_loss,
            **training_mean(results, training_sets(self.cfg.data)),
        }
        entry = self.log.evaluation("eval", float(epoch + 1), progress.global_step, results, extra)
        improved = progress.evaluated(entry[trainer.monitor], epoch + 1, trainer.monitor_mode)
        self.log.best_so_far(epoch + 1, trainer.monitor, progress.best)
        progress.epoch, progress.step_in_epoch = epoch + 1, 0
        scores = ", ".join(f"{name} {entry[f'eval_{name}']:.4f}" for name in names())
        if len(results) > 1:  # the plain scores are the mean over the sets
            scores += "; f1 by set " + ", ".join(f"{s} {r['f1']:.4f}" for s, r in results.items())
        best = " (best)" if improved else ""
        self.printer(f"epoch {epoch + 1}: train loss {train_loss:.4f}, eval {scores}{best}")
        self.log.save()
        self.save(best_improved=improved)
        self.stop_if_asked()
        patience = trainer.early_stopping_patience
        if progress.patience_ran_out(patience):
            self.printer(
                f"early stopping: {trainer.monitor} did not improve for "
                f"{counted(patience, 'evaluation')}"
            )
            return True
        return False

    def evaluate(self, eval_set: EncodedSet, split: str) -> dict:
        """Exact evaluation of the evaluated weights on a set's split, sharded over every rank."""
        trainer = self.cfg.trainer
        return evaluate(
            self.evaluate_forward,
            eval_set.features[split],
            eval_set.gold[split],
            self.prepared.labels,
            trainer.eval_batch_size,
            self.collate,
            self.env,
            trainer.precision,
        )

    def save(self, best_improved: bool = False) -> None:
        """Checkpoint: every rank takes part (ner/checkpoint.py TrainState.save), rank 0 writes."""
        progress = self.state.progress
        self.losses.fold_into(progress, self.env)  # first: a non-finite loss stops before a save
        self.directory.ensure_owned()  # rank 0 holds the lock: checked before any rank writes
        progress.wall_seconds = self.clock.wall()
        keep = self.cfg.trainer.keep_last if self.cfg.trainer.save_every_steps else 0
        self.state.save(self.directory.path / "checkpoints", self.env, best_improved, keep)
        distributed.barrier(self.env)
        self.saved_at = progress.global_step

    def stop_if_asked(self) -> None:
        """A collective at a step boundary: when any rank got a stop signal, all save and stop."""
        signum = self.stop_requests.agreed(self.env)
        if not signum:
            return
        self.stop_requests.await_agreement()
        progress = self.state.progress
        if self.saved_at != progress.global_step:
            self.clock.stop()
            self.save()
        last = self.directory.path / "checkpoints" / "last.pt"
        raise self.stop_requests.interrupted(
            f"after {progress.position(self.cfg.trainer.epochs)}; the checkpoint "
            f"{last} resumes there: run the same command (with hydra.run.dir="
            f"{self.directory.path})",
            signum,
            global_step=progress.global_step,
            epoch=progress.epochs_done(self.per_epoch),
        )


@hydra.main(config_path=cli.CONF_DIR, config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> float | None:
    """One Hydra job: join the process group, train, tear down."""
    run_dir = cli.job_started()
    env = None
    try:
        env = distributed.setup(cfg.trainer.device)
        return train(cfg, env, run_dir)
    except (Interrupted, UserError) as e:
        cli.job_ended(e, env)
        return None
    finally:
        distributed.teardown()


def main() -> None:
    """Console script `ner-train` (and `python -m ner.train`): ner/run/cli.py's command line."""
    cli.command(hydra_main)


if __name__ == "__main__":
    # Run through the importable module, not `__main__`, so launchers that pickle the task
    # function (submitit for Slurm) pickle a reference to ner.train.hydra_main.
    from ner.train import main as _main

    _main()

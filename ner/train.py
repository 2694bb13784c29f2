"""Hydra entry point and the training loop.

    python -m ner.train                                          # the demo, one process
    torchrun --standalone --nproc_per_node=2 -m ner.train         # the same on 2 processes
    torchrun --nproc_per_node=N -m ner.train experiment=wikiann_he_card

`main` (Hydra) sets up the process group, calls `train(cfg, env, run_dir)` and tears down;
tests call `train` directly. The loop: per epoch, steps of `grad_accum_steps` micro-batches (no
DDP sync but on the last), loss summed over labelled tokens and divided by the *global* count of
labelled tokens of the step, so N ranks at batch B update exactly like 1 rank at batch N*B;
clip, step, schedule; then exact evaluation on every rank, logs and checkpoint on rank 0.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from ner import checkpoint, config, distributed, rundir
from ner.batching import epoch_plan, steps_per_epoch
from ner.errors import UserError
from ner.evaluate import autocast, evaluate
from ner.features import IGNORE, Collator
from ner.optimization import build_optimizer, build_schedule, replan
from ner.preemption import EXIT_INTERRUPTED, Interrupted, StopRequests
from ner.prepare import prepare
from ner.runlog import Printer, RunLog, hparam_values

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
config.register()
OmegaConf.register_new_resolver("ner_run_stamp", rundir.run_stamp, use_cache=True, replace=True)


class Diverged(UserError):
    """The loss became NaN or infinite."""


@dataclass
class Progress:
    """Where the loop stands; saved in every checkpoint."""

    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # optimizer steps done in the current epoch
    global_step: int = 0
    best: float | None = None
    best_epoch: float | None = None
    evals_without_improvement: int = 0
    train_seconds: float = 0.0
    wall_seconds: float = 0.0  # over every attempt, up to the last checkpoint
    epoch_loss_sum: float = 0.0  # summed over ranks, up to the last sync
    epoch_loss_count: int = 0
    # [first step, total steps] of each learning-rate schedule the run has followed: one, unless
    # a finished run was extended with more epochs (README: "Extending a finished run").
    schedule: list[list[int]] = field(default_factory=list)


def train(cfg: DictConfig, env: distributed.Env, run_dir: Path) -> float | None:
    """Train and evaluate in `run_dir`; return the best value of trainer.monitor.

    The run first takes the directory and decides where it starts; a refused run writes
    nothing there (ner/rundir.py). Returns None when trainer.stop_after_steps cut it short;
    raises `Interrupted` when a signal stopped it (a checkpoint was written at that step).
    """
    config.check(cfg)
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    with StopRequests() as stop, rundir.RunDir(run_dir, env) as owner:
        start = owner.start(cfg)
        if start.kind == "finished":
            distributed.print0(
                env,
                f"run dir {run_dir} holds a finished run (best {start.result.get('monitor')} "
                f"{start.result.get('best')}); nothing to do. To train it longer, raise "
                "trainer.epochs",
            )
            return start.result.get("best")
        owner.accept(cfg, start)
        return _run(cfg, env, owner, start, stop)


def _run(
    cfg: DictConfig,
    env: distributed.Env,
    owner: rundir.RunDir,
    start: rundir.Start,
    stop: StopRequests,
) -> float | None:
    t, run_dir = cfg.trainer, owner.path
    started = time.time()
    say = Printer(run_dir, env.is_main)
    run = prepare(cfg, env, run_dir, say)  # data, tokenizer, features, model (seeded)
    model, device = run.model.to(env.device), env.device
    ddp = (
        DDP(model, device_ids=[env.local_rank] if device.type == "cuda" else None)
        if env.distributed
        else model
    )
    forward = torch.compile(ddp) if t.compile else ddp
    optimizer = build_optimizer(cfg.optim, model, device)
    n_train = len(run.features["train"])
    per_epoch = steps_per_epoch(n_train, t.batch_size, env.world_size, t.grad_accum_steps)
    total_steps = per_epoch * t.epochs
    config.check_schedule(cfg, total_steps)
    scheduler = build_schedule(optimizer, cfg.optim.warmup_steps, total_steps)
    scaler = torch.amp.GradScaler(
        device.type, enabled=t.precision == "fp16" and device.type == "cuda"
    )
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    progress, history = Progress(schedule=[[0, total_steps]]), []
    resumed = start.kind == "resume"
    if resumed:
        saved, history = checkpoint.restore(
            start.checkpoint, start.path, run.labels, model, optimizer, scheduler, scaler, env
        )
        progress = Progress(**{"schedule": [[0, total_steps]], **saved})
        if progress.schedule[-1][1] != total_steps:  # extended: plan the rest for the new total
            progress.schedule.append([progress.global_step, total_steps])
            replan(optimizer, scheduler, progress.global_step)
    # Wall time of the earlier attempts: up to their last checkpoint, or to the end of the
    # finished attempt that this one extends.
    wall_before = max(progress.wall_seconds, (start.result or {}).get("wall_time_s", 0.0))
    log = RunLog(
        run_dir, env.is_main, history, purge_step=progress.global_step + 1 if resumed else None
    )
    global_batch = t.batch_size * env.world_size * t.grad_accum_steps
    log.hparams(
        hparam_values(cfg, env.world_size),
        [
            f"best/{t.monitor}",
            *(f"eval/{k}" for k in ("f1", "precision", "recall", "accuracy", "loss")),
            "test/f1",
        ],
    )
    say(
        f"world size {env.world_size} x per-rank batch {t.batch_size} x accumulation "
        f"{t.grad_accum_steps} = global batch {global_batch}; {n_train} training windows, "
        f"{per_epoch} steps per epoch, {total_steps} steps in {t.epochs} epochs; device {device}"
        + (f"; resuming at epoch {progress.epoch} step {progress.global_step}" if resumed else "")
    )
    if len(progress.schedule) > 1 and progress.schedule[-1][0] == progress.global_step:
        say(
            f"extended to {t.epochs} epochs: steps after {progress.global_step} follow the linear "
            f"schedule planned for {total_steps} steps"
        )

    collate = Collator(run.tokenizer.pad_token_id, 8 if device.type == "cuda" else None)
    lengths = [len(f["input_ids"]) for f in run.features["train"]]
    # Loss bookkeeping stays on the device; it is read at log, checkpoint and epoch ends only.
    # Sums of cross-entropy are this rank's; counts of labelled tokens are already global.
    bad_step = torch.full((), -1, dtype=torch.long, device=device)  # first non-finite step
    window_loss = torch.zeros((), dtype=torch.float64, device=device)  # since the last log
    window_count = torch.zeros((), dtype=torch.long, device=device)
    epoch_loss = torch.zeros((), dtype=torch.float64, device=device)  # since the last sync
    epoch_count = torch.zeros((), dtype=torch.long, device=device)
    interrupted = False
    saved_at = progress.global_step if resumed else -1  # the step of the newest checkpoint

    def fold_epoch_loss() -> None:
        """Move the device-side epoch loss (summed over ranks) into `progress`, which is saved."""
        progress.epoch_loss_sum += float(distributed.all_reduce_sum(epoch_loss.clone(), env))
        progress.epoch_loss_count += int(epoch_count)
        epoch_loss.zero_()
        epoch_count.zero_()

    def save(best_improved: bool = False) -> None:
        """Checkpoint on rank 0 (collective first: every rank's RNG goes in)."""
        nonlocal saved_at
        check_finite(bad_step, progress, env)
        fold_epoch_loss()
        rngs = distributed.all_gather_objects(checkpoint.rng_state(device), env)
        progress.wall_seconds = wall_before + time.time() - started
        if env.is_main:
            owner.ensure_owned()
            checkpoint.save_run(
                run_dir / "checkpoints",
                model,
                optimizer,
                scheduler,
                scaler,
                asdict(progress),
                log.history,
                rngs,
                run.labels,
                OmegaConf.to_yaml(cfg, resolve=True),
                best_improved,
                t.keep_last if t.save_every_steps else 0,
            )
        distributed.barrier(env)
        saved_at = progress.global_step

    def stop_if_asked(epoch: int) -> None:
        """A collective at a step boundary: when any rank got a stop signal, all save and stop."""
        signum = stop.agreed(env)
        if not signum:
            return
        stop.settle()
        if saved_at != progress.global_step:
            progress.train_seconds += time.perf_counter() - tic
            save()
        raise stop.interrupted(
            f"after step {progress.global_step} (epoch {epoch + 1} of {t.epochs}); the checkpoint "
            f"{run_dir / 'checkpoints' / 'last.pt'} resumes there: run the same command "
            f"(with hydra.run.dir={run_dir})",
            signum,
            global_step=progress.global_step,
            epoch=epoch + progress.step_in_epoch / max(len(plan), 1),
        )

    model.train()
    stop.deferred = True  # from here a signal stops the run at the next step boundary
    for epoch in range(progress.epoch, t.epochs):
        plan = epoch_plan(
            lengths,
            t.batch_size,
            env.world_size,
            t.grad_accum_steps,
            cfg.seed,
            epoch,
            t.group_by_length,
        )
        todo = plan[progress.step_in_epoch :]
        # An empty share of a micro-step becomes example 0 with every label masked (DDP needs a backward).
        mine = [micro[env.rank] or [0] for step in todo for micro in step]
        empty = [not micro[env.rank] for step in todo for micro in step]
        loader = DataLoader(
            run.features["train"],
            batch_sampler=mine,
            collate_fn=collate,
            num_workers=t.num_workers,
            pin_memory=device.type == "cuda",
            generator=torch.Generator(),  # its seed draw must not consume the global (dropout) RNG
        )
        batches, flags = iter(loader), iter(empty)
        bar = say.progress(
            total=len(plan),
            initial=progress.step_in_epoch,
            desc=f"epoch {epoch + 1}/{t.epochs}",
            enabled=t.progress,
        )
        tic = time.perf_counter()
        for step in todo:
            micro = [next(batches) for _ in step]
            for batch, is_empty in zip(micro, [next(flags) for _ in step], strict=True):
                if is_empty:
                    batch["labels"].fill_(IGNORE)
            micro = [{k: v.to(device, non_blocking=True) for k, v in b.items()} for b in micro]
            # Labelled tokens of this optimizer step, over every rank and micro-step (counted on
            # the device: no host-device synchronisation).
            n_step = distributed.all_reduce_sum(
                sum((b["labels"] != IGNORE).sum() for b in micro), env
            ).clamp(min=1)
            for j, batch in enumerate(micro):
                last_micro = j == len(micro) - 1
                sync = nullcontext() if last_micro or not env.distributed else ddp.no_sync()
                with sync:
                    with autocast(device, t.precision):
                        logits = forward(
                            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                        ).logits
                    # Sum over this rank's labelled tokens / the step's global count; DDP then
                    # averages over ranks, so scale by world size: the update is the global mean.
                    loss_sum = F.cross_entropy(
                        logits.float().flatten(0, 1),
                        batch["labels"].flatten(),
                        ignore_index=IGNORE,
                        reduction="sum",
                    )
                    scaler.scale(loss_sum * env.world_size / n_step).backward()
                window_loss += loss_sum.detach()
                epoch_loss += loss_sum.detach()
            window_count += n_step
            epoch_count += n_step
            bad_step = torch.where(
                torch.isfinite(window_loss) | (bad_step >= 0), bad_step, progress.global_step + 1
            )
            if cfg.optim.max_grad_norm > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.global_step += 1
            progress.step_in_epoch += 1
            bar.update(1)

            if progress.global_step % t.log_every == 0:
                check_finite(bad_step, progress, env)
                loss = float(distributed.all_reduce_sum(window_loss.clone(), env)) / max(
                    int(window_count), 1
                )
                epoch_f = epoch + progress.step_in_epoch / len(plan)
                log.train(progress.global_step, epoch_f, loss, scheduler.get_last_lr()[0])
                bar.set_postfix(loss=f"{loss:.4f}")
                window_loss.zero_()
                window_count.zero_()
            if t.save_every_steps and progress.global_step % t.save_every_steps == 0:
                progress.train_seconds += time.perf_counter() - tic
                save()
                tic = time.perf_counter()
            stop_if_asked(epoch)
            if t.stop_after_steps and progress.global_step >= t.stop_after_steps:
                interrupted = True
                break
        progress.train_seconds += time.perf_counter() - tic
        bar.close()
        if interrupted:
            say(f"stopped after {progress.global_step} steps (trainer.stop_after_steps)")
            break

        # End of epoch: fold this epoch's loss into the total, then evaluate.
        check_finite(bad_step, progress, env)
        fold_epoch_loss()
        train_loss = progress.epoch_loss_sum / max(progress.epoch_loss_count, 1)
        progress.epoch_loss_sum, progress.epoch_loss_count = 0.0, 0
        result = evaluate(
            model,
            run.features["validation"],
            run.gold["validation"],
            run.labels,
            t.eval_batch_size,
            collate,
            env,
            t.precision,
        )
        entry = log.evaluation(
            "eval", float(epoch + 1), progress.global_step, result, {"train_loss": train_loss}
        )
        value = entry[t.monitor]
        improved = progress.best is None or (
            value > progress.best if t.monitor_mode == "max" else value < progress.best
        )
        if improved:
            progress.best, progress.best_epoch = value, float(epoch + 1)
        progress.evals_without_improvement = (
            0 if improved else progress.evals_without_improvement + 1
        )
        log.best_so_far(epoch + 1, t.monitor, progress.best)
        progress.epoch, progress.step_in_epoch = epoch + 1, 0
        say(
            f"epoch {epoch + 1}: train loss {train_loss:.4f}, eval loss {result['loss']:.4f}, "
            f"precision {result['precision']:.4f}, recall {result['recall']:.4f}, "
            f"F1 {result['f1']:.4f}, accuracy {result['accuracy']:.4f}"
            + (" (best)" if improved else "")
        )
        log.save()
        save(best_improved=improved)
        stop_if_asked(epoch)
        patience = t.early_stopping_patience
        if patience and progress.evals_without_improvement >= patience:
            say(f"early stopping: {t.monitor} did not improve for {patience} evaluations")
            break

    stop.deferred = False
    stop.settle()
    if interrupted:
        log.close()
        return None
    from ner.finish import finish

    progress.wall_seconds = wall_before + time.time() - started
    finish(cfg, env, owner, run, model, log, asdict(progress), n_train, collate, say)
    return progress.best


def check_finite(bad_step: torch.Tensor, progress: Progress, env: distributed.Env) -> None:
    """Stop (before any checkpoint is written) if a step's loss was NaN or infinite on any rank."""
    step = int(distributed.all_reduce_max(bad_step.clone(), env))
    if step >= 0:
        raise Diverged(
            f"training diverged: non-finite loss at optimizer step {step} (epoch {progress.epoch + 1}); "
            "the last checkpoint, from before that step, is kept; lower optim.lr or check the data"
        )


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> float | None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    env = None
    try:
        env = distributed.setup(cfg.trainer.device)
        return train(cfg, env, run_dir)
    except Interrupted as e:
        if env is None or env.is_main:
            print(e, file=sys.stderr, flush=True)
        e.hand_over()  # submitit's handler requeues the Slurm job
        sys.exit(EXIT_INTERRUPTED)
    except UserError as e:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # Hydra marks this job failed and runs the others
        if env is None or env.is_main:
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
        sys.exit(2)
    finally:
        distributed.teardown()


def main() -> None:
    """Console script `ner-train`: a bad config is one line on stderr and exit status 2."""
    special = {
        "--help",
        "-h",
        "--hydra-help",
        "--cfg",
        "-c",
        "--info",
        "-i",
        "--config-name",
        "-cn",
        "--config-dir",
        "-cd",
        "--config-path",
        "-cp",
        "--shell-completion",
        "-sc",
        "--package",
        "-p",
    }
    if not special & {a.split("=")[0] for a in sys.argv[1:]}:  # those modes are Hydra's alone
        problem = config.precheck(sys.argv[1:], CONF_DIR)
        if problem:
            if int(os.environ.get("RANK", 0)) == 0:
                print(f"error: {problem}", file=sys.stderr)
            sys.exit(2)
    hydra_main()


if __name__ == "__main__":
    # Run through the importable module, not `__main__`, so launchers that pickle the task
    # function (submitit for Slurm) pickle a reference to ner.train.hydra_main.
    from ner.train import main as _main

    _main()

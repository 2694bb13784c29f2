"""Structured config: every key, its one default, and why.

Hydra merges `conf/*.yaml` onto these dataclasses, so an unknown key or a value of the wrong type
is refused at composition time. YAML files only override. `check(cfg)` then rejects values that
have the right type but cannot work (a zero batch size, a negative learning rate, ...).

Keys declared with `operational(...)` change how a run is carried out (logging, workers, where
checkpoints go), not what it computes: a run may resume under other values of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from ner.errors import UserError


def operational(default: Any) -> Any:
    """A key that does not change what a run computes: it may differ when the run resumes."""
    return field(default=default, metadata={"operational": True})


@dataclass
class ModelConfig:
    # Hub name (`xlm-roberta-base`) or a local directory in Hugging Face format. null builds the
    # tiny random-init XLM-R below, with a tokenizer trained on the training sentences.
    name_or_path: str | None = None
    # Overrides hidden and attention dropout; null keeps the model's own (0.1 for xlm-roberta-base).
    dropout: float | None = None
    # Longest input in sub-tokens, special tokens included. Longer sentences are split into
    # overlapping windows, never truncated. null: the tokenizer's model_max_length, capped at 512.
    max_length: int | None = None
    # Sub-tokens of context on each side of a window's labelled part (evaluation and prediction).
    window_stride: int = 32
    # Shape of the tiny model, used only when name_or_path is null.
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    vocab_size: int = 1000
    max_position_embeddings: int = 130


@dataclass
class DataConfig:
    # Hub dataset name (`unimelb-nlp/wikiann`) or a local directory in the hub's layout
    # (`../shared/wikiann`); `demo` is the generated Hebrew set shipped with the project;
    # null when the splits come from the *_file keys below.
    name: str | None = "demo"
    # Dataset configuration (the WikiANN language), e.g. `he`.
    config: str | None = None
    # Local JSON-lines (.jsonl) or CoNLL (.conll/.txt/.tsv) files; they replace the splits of `name`.
    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    # Keep only the first N sentences (quick runs); null keeps all.
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    # What to do with repairable problems (I- tag continuing nothing, empty sentence, invisible
    # token): `raise` stops with the place and the problem; `repair` fixes them visibly and counts.
    on_error: str = "repair"
    # Where encoded features are cached (keyed by data, tokenizer, window; ner/feature_cache.py),
    # so each node tokenizes once and later runs not at all; null turns the cache off.
    cache_dir: str | None = operational("~/.cache/ner/features")


@dataclass
class OptimConfig:
    # Peak learning rate.
    lr: float = 2e-5
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    # Decoupled weight decay (AdamW); 0 makes it plain Adam, as in the reference card.
    weight_decay: float = 0.0
    # Linear warm-up from 0, in optimizer steps, then linear decay to 0 at the last step.
    warmup_steps: int = 0
    # Gradient-norm clipping; 0 turns it off. 1.0 is the Hugging Face Trainer default.
    max_grad_norm: float = 1.0


@dataclass
class TrainerConfig:
    # Epochs of training. A finished run resumed with more epochs goes on training, the rest of the
    # schedule planned for the new total (README: "Extending a finished run").
    epochs: int = 3
    # Sentences per process per micro-step. The global batch is
    # batch_size * world_size * grad_accum_steps.
    batch_size: int = 3
    # Sentences per process per evaluation batch.
    eval_batch_size: int = 3
    grad_accum_steps: int = 1
    # Batch sentences of similar length (shuffled in chunks, like the Trainer's group_by_length):
    # less padding, same examples once per epoch.
    group_by_length: bool = True
    # fp32, bf16 or fp16 (autocast; fp16 adds a grad scaler). bf16/fp16 apply on CUDA.
    precision: str = "fp32"
    # Run torch.compile on the model (the same computation, other kernels).
    compile: bool = operational(False)
    # cpu, cuda, or auto (cuda:LOCAL_RANK when available).
    device: str = operational("auto")
    # Optimizer steps between train/loss and train/lr logs (the loss is read from the device then).
    log_every: int = operational(50)
    # DataLoader worker processes; 0 loads in the training process.
    num_workers: int = operational(0)
    # Torch intra-op threads per process; null leaves torch's default.
    threads: int | None = operational(None)
    # Checkpoint every N optimizer steps as well as every epoch; 0 = per epoch only. An interrupted
    # run (SIGTERM, SIGINT, SIGUSR1, SIGUSR2) also checkpoints at the step it stops at.
    save_every_steps: int = operational(0)
    # Step checkpoints kept besides last and best.
    keep_last: int = operational(1)
    # auto: resume from <run dir>/checkpoints/last.pt when it exists; never; or a checkpoint path.
    resume: str = operational("auto")
    # Metric that picks the best checkpoint (a key of the eval entry of log_history.json).
    monitor: str = "eval_f1"
    monitor_mode: str = "max"
    # Stop after this many evaluations without improvement of `monitor`; 0 = never.
    early_stopping_patience: int = operational(0)
    # Evaluate the best model on the test split at the end, when the dataset has one.
    eval_test: bool = operational(True)
    # Interrupt the run after this many optimizer steps in total, as a kill would (no evaluation,
    # no final reports; checkpoints as configured). For tests and debugging; 0 = never.
    stop_after_steps: int = operational(0)
    # Progress bars on rank 0.
    progress: bool = operational(True)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 42
    # Name of the run (the model card's title); null: <model>-finetuned-<data>, e.g.
    # xlm-roberta-base-finetuned-wikiann-he.
    run_name: str | None = operational(None)


_SUBSCHEMAS = {
    "model": ModelConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "trainer": TrainerConfig,
}


def register() -> None:
    """Register the schema so `conf/config.yaml` can extend it (`defaults: [base_config, ...]`)."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)


def unknown_keys(cfg: Any, schema: type, prefix: str = "") -> list[str]:
    """Keys of `cfg` that the dataclass `schema` does not declare (recursively)."""
    names = {f.name for f in dataclasses.fields(schema)}
    out = []
    for key in cfg:
        if key not in names:
            out.append(prefix + str(key))
        elif schema is Config and key in _SUBSCHEMAS:
            out += unknown_keys(cfg[key], _SUBSCHEMAS[key], f"{key}.")
    return out


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _schema_keys(schema: type = Config, prefix: str = "") -> dict[str, bool]:
    """Every key of the schema, flattened, mapped to whether it is operational."""
    out = {}
    for f in dataclasses.fields(schema):
        if f.name in _SUBSCHEMAS and schema is Config:
            out.update(_schema_keys(_SUBSCHEMAS[f.name], f"{f.name}."))
        else:
            out[prefix + f.name] = bool(f.metadata.get("operational"))
    return out


def computed_differences(saved: dict, cfg: Any, ignore: tuple[str, ...] = ()) -> list[str]:
    """ "key: old -> new" for each key that changes what a run computes, between a saved config
    (a plain dict, as a checkpoint holds it) and `cfg`.

    A key the saved config lacks (it was written by an older version) reads as its default; a
    key the schema no longer has is ignored; operational keys and `ignore` may differ freely.
    """
    from omegaconf import OmegaConf

    keys = _schema_keys()
    defaults = _flatten(OmegaConf.to_container(OmegaConf.structured(Config)))
    old = {**defaults, **{k: v for k, v in _flatten(saved).items() if k in keys}}
    new = _flatten(OmegaConf.to_container(cfg, resolve=True))
    compared = [k for k, free in keys.items() if not free and k not in ignore]
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in compared if old.get(k) != new.get(k)]


def check(cfg: Any) -> None:
    """Refuse unknown keys and values that type-check but cannot work, in one line naming the key."""
    unknown = unknown_keys(cfg, Config)
    if unknown:  # `+key=value` adds keys past Hydra's struct check; the schema still refuses them
        raise UserError(f"config: unknown key {unknown[0]} (every key is listed in ner/config.py)")
    t, o, d, m = cfg.trainer, cfg.optim, cfg.data, cfg.model
    rules = [
        (t.epochs >= 1, "trainer.epochs", t.epochs, "must be >= 1"),
        (t.batch_size >= 1, "trainer.batch_size", t.batch_size, "must be >= 1"),
        (t.eval_batch_size >= 1, "trainer.eval_batch_size", t.eval_batch_size, "must be >= 1"),
        (t.grad_accum_steps >= 1, "trainer.grad_accum_steps", t.grad_accum_steps, "must be >= 1"),
        (t.log_every >= 1, "trainer.log_every", t.log_every, "must be >= 1"),
        (t.num_workers >= 0, "trainer.num_workers", t.num_workers, "must be >= 0"),
        (t.save_every_steps >= 0, "trainer.save_every_steps", t.save_every_steps, "must be >= 0"),
        (t.keep_last >= 0, "trainer.keep_last", t.keep_last, "must be >= 0"),
        (t.stop_after_steps >= 0, "trainer.stop_after_steps", t.stop_after_steps, "must be >= 0"),
        (
            t.early_stopping_patience >= 0,
            "trainer.early_stopping_patience",
            t.early_stopping_patience,
            "must be >= 0",
        ),
        (
            t.precision in ("fp32", "bf16", "fp16"),
            "trainer.precision",
            t.precision,
            "must be one of fp32, bf16, fp16",
        ),
        (
            t.device in ("auto", "cpu", "cuda"),
            "trainer.device",
            t.device,
            "must be one of auto, cpu, cuda",
        ),
        (
            t.monitor_mode in ("max", "min"),
            "trainer.monitor_mode",
            t.monitor_mode,
            "must be max or min",
        ),
        (
            t.monitor in monitorable(),
            "trainer.monitor",
            t.monitor,
            f"is not a metric the run logs; choose one of {', '.join(monitorable())}",
        ),
        (t.threads is None or t.threads >= 1, "trainer.threads", t.threads, "must be >= 1 or null"),
        (o.lr > 0, "optim.lr", o.lr, "must be > 0"),
        (o.eps > 0, "optim.eps", o.eps, "must be > 0"),
        (
            len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
            "optim.betas",
            list(o.betas),
            "must be two numbers in [0, 1)",
        ),
        (o.weight_decay >= 0, "optim.weight_decay", o.weight_decay, "must be >= 0"),
        (o.warmup_steps >= 0, "optim.warmup_steps", o.warmup_steps, "must be >= 0"),
        (o.max_grad_norm >= 0, "optim.max_grad_norm", o.max_grad_norm, "must be >= 0 (0 = off)"),
        (d.on_error in ("raise", "repair"), "data.on_error", d.on_error, "must be raise or repair"),
        (
            d.max_train_samples is None or d.max_train_samples >= 1,
            "data.max_train_samples",
            d.max_train_samples,
            "must be >= 1 or null",
        ),
        (
            d.max_eval_samples is None or d.max_eval_samples >= 1,
            "data.max_eval_samples",
            d.max_eval_samples,
            "must be >= 1 or null",
        ),
        (
            d.name is not None or d.train_file is not None,
            "data.name",
            d.name,
            "is null, so data.train_file must be given",
        ),
        (m.dropout is None or 0 <= m.dropout < 1, "model.dropout", m.dropout, "must lie in [0, 1)"),
        (
            m.max_length is None or m.max_length >= 8,
            "model.max_length",
            m.max_length,
            "must be >= 8 or null",
        ),
        (m.window_stride >= 0, "model.window_stride", m.window_stride, "must be >= 0"),
    ]
    for ok, key, value, why in rules:
        if not ok:
            raise UserError(f"config: {key}={value} {why}")
    from ner.metrics import mode_of

    if str(t.monitor_mode) != mode_of(t.monitor):
        raise UserError(
            f"config: trainer.monitor_mode={t.monitor_mode} picks the worst epoch: "
            f"{t.monitor} is better when {'higher' if mode_of(t.monitor) == 'max' else 'lower'}; "
            f"set trainer.monitor_mode={mode_of(t.monitor)}"
        )
    if t.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError(
                "config: trainer.device=cuda but this machine has no CUDA device; use "
                "trainer.device=auto or cpu"
            )
    if m.max_length is not None and 2 * m.window_stride + 2 >= m.max_length:
        raise UserError(
            f"config: model.window_stride={m.window_stride} leaves no room in a window of "
            f"model.max_length={m.max_length}: need 2*stride + 2 < max_length"
        )


def run_name(cfg: Any) -> str:
    """`run_name`, else <model>-finetuned-<data>: xlm-roberta-base-finetuned-wikiann-he."""
    if cfg.run_name:
        return cfg.run_name
    from pathlib import PurePath

    model = PurePath(cfg.model.name_or_path).name if cfg.model.name_or_path else "tiny-xlmr"
    d = cfg.data
    data = PurePath(d.name).name if d.name else PurePath(d.train_file).stem
    return f"{model}-finetuned-{data}" + (f"-{d.config}" if d.config else "")


def monitorable() -> list[str]:
    """The log keys trainer.monitor may name: the validation metrics of every epoch."""
    from ner.metrics import NAMES

    return [f"eval_{name}" for name in NAMES]


def check_schedule(cfg: Any, total_steps: int) -> None:
    """Checks that need the data: the warm-up must fit inside training."""
    if cfg.optim.warmup_steps >= total_steps:
        raise UserError(
            f"config: optim.warmup_steps={cfg.optim.warmup_steps} is not shorter than training "
            f"({total_steps} optimizer steps)"
        )

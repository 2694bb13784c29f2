"""Structured config: every key, its one default, and why.

Hydra merges `conf/*.yaml` onto these dataclasses, so an unknown key or a value of the wrong type
is refused at composition time. YAML files only override. `ner.run.checks.check(cfg)` then rejects
values that have the right type but cannot work (a zero batch size, a negative learning rate).

`key(default, at_least=..., above=..., below=..., operational=...)` (below, with `recipe`,
`operational` and the fixed sets of values) declares a key with its bounds beside its
default; ner/run/checks.py holds values to them. Operational keys change how a run is carried out (logging, workers,
where checkpoints go), not what it computes: a run may resume under other values of them.
`trainer.threads` and `trainer.device` change the order of float reductions only (the rounding, not
the computation): see trainer.threads.

Beside the schema: the resolvers its computed defaults name (`ner_recipe`, `ner_monitor`, ...) are
in ner/resolvers.py, registered when this module is imported; the run's and the model's names (`run_name`, `model_name`) in ner/naming.py; the recipe line
a run prints at start (`recipe_summary`) in ner/report/hparams.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

import ner.resolvers  # noqa: F401  registers the resolvers the defaults below name
from ner.data.checks import ON_ERROR_CHOICES

# How a key is declared: its one default with the bounds ner/run/checks.py holds it to (`key`),
# whether it may change on resume (`operational`), a default that follows the model the run
# trains (`recipe`), and the fixed sets of values (`Choice`: Hydra refuses any other).


def key(
    default: Any,
    *,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    operational: bool = False,
    **meta: Any,
) -> Any:
    """A key with its default and the bounds `check` holds its value to (null passes)."""
    bounds = {"at_least": at_least, "above": above, "below": below}
    meta.update(operational=operational, **{k: v for k, v in bounds.items() if v is not None})
    return field(default=default, metadata=meta)


def recipe(pretrained: float, tiny: float, **bounds: float) -> Any:
    """A key of the training recipe, whose default follows the model the run trains:
    `pretrained` when model.name_or_path names a pretrained encoder, `tiny` when it is null (the
    tiny random-init model). It is resolved when read, so no group or key can hand one model the
    other's tuning; a value set by an experiment or on the command line replaces it."""
    default = f"${{ner_recipe:{pretrained!r},{tiny!r}}}"
    return key(default, recipe={"pretrained": pretrained, "tiny": tiny}, **bounds)


def operational(default: Any, **bounds: float) -> Any:
    """A key that does not change what a run computes: it may differ when the run resumes."""
    return key(default, operational=True, **bounds)


class Choice(str, Enum):
    """A value from a fixed set. Hydra refuses any other value when it composes the config; the
    value compares and prints as its plain string."""

    def __str__(self) -> str:
        return self.value


Precision = Choice("Precision", {v: v for v in ("fp32", "bf16", "fp16")})
Device = Choice("Device", {v: v for v in ("auto", "cpu", "cuda")})
Strategy = Choice("Strategy", {v: v for v in ("ddp", "fsdp")})
MonitorMode = Choice("MonitorMode", {v: v for v in ("max", "min")})
OnError = Choice("OnError", {v: v for v in ON_ERROR_CHOICES})  # `raise` is a keyword
KeepCheckpoints = Choice("KeepCheckpoints", {v: v for v in ("all", "best", "none")})
Schedule = Choice(
    "Schedule",
    {
        v: v
        for v in (  # transformers' names (ner/optimization.py)
            "linear",
            "cosine",
            "cosine_with_restarts",
            "polynomial",
            "constant",
            "constant_with_warmup",
            "inverse_sqrt",
        )
    },
)


@dataclass
class ModelConfig:
    # Hub name (`xlm-roberta-base`) or a local directory in Hugging Face format. null builds the
    # tiny random-init XLM-R below, with a tokenizer trained on the training sentences.
    name_or_path: str | None = None
    # Overrides hidden and attention dropout; null keeps the model's own (0.1 for xlm-roberta-base).
    dropout: float | None = key(None, at_least=0, below=1)
    # Longest input in sub-tokens, special tokens included. Longer sentences are split into
    # overlapping windows, never truncated. null: the tokenizer's model_max_length, capped at 512.
    max_length: int | None = key(None, at_least=8)
    # Sub-tokens of context on each side of a window's labelled part (evaluation and prediction).
    window_stride: int = key(32, at_least=0)
    # The token-classification head, a name in ner/heads.py HEADS: `linear` is the stock
    # classifier (an export loads with AutoModelForTokenClassification and pipeline).
    head: str = "linear"
    # Freeze (requires_grad false: no gradient, no optimizer state; saved and exported as they
    # are) the embeddings (every encoder parameter outside its layers) and the lowest N layers.
    freeze_embeddings: bool = False
    freeze_layers: int = key(0, at_least=0)
    # The largest share (0 to 1) of training words the tokenizer may map to its unknown piece
    # alone: a run past it is refused at start, where the share is printed (a model directory
    # without its tokenizer files, a vocabulary without the data's script); 1 trains anyway.
    max_unknown_words: float = operational(0.5, at_least=0)
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
    # (`../shared/wikiann`); `demo` is the generated Hebrew set shipped with the project
    # (data=demo, the default of conf/config.yaml); null: the splits come from the *_file keys.
    name: str | None = None
    # Dataset configuration (the WikiANN language), e.g. `he`, or a list of them, `[he, ar]`:
    # several training languages, whose union is drawn with `sampling_alpha`. (Any: a string or a
    # list of strings; OmegaConf has no union of the two.)
    config: Any = None
    # Evaluation sets of `name`, by configuration, scored every epoch and tested at the end:
    # `[en, he, ar]` for zero-shot transfer. null: the training configurations.
    eval_configs: list[str] | None = None
    # More evaluation sets from local files, by name: `'data.extra_eval_files={news: n.conll}'`
    # (out-of-domain). (Any: OmegaConf cannot merge a mapping into an empty typed one.)
    extra_eval_files: Any = None
    # How the training languages mix in an epoch: a language with share p of the training
    # sentences is drawn with probability proportional to p**alpha, over an epoch as long as the
    # union. 1.0 keeps the union as it is; smaller values up-sample small languages (XLM-R's
    # pre-training used 0.3).
    sampling_alpha: float = key(1.0, above=0)
    # Local JSON-lines (.jsonl) or CoNLL (.conll/.txt/.tsv) files; they replace the splits of a
    # single `name` configuration. train_file may be a list: several training sources. (Any: a
    # string or a list of strings.)
    train_file: Any = None
    validation_file: str | None = None
    test_file: str | None = None
    # Keep only the first N sentences of each source and set (quick runs); null keeps all.
    max_train_samples: int | None = key(None, at_least=1)
    max_eval_samples: int | None = key(None, at_least=1)
    # What to do with repairable problems (I- tag continuing nothing, empty sentence, invisible
    # token): `raise` stops with the place and the problem; `repair` fixes them visibly and counts.
    on_error: OnError = OnError["repair"]
    # Where encoded features are cached (keyed by data, tokenizer, window; ner/features.py),
    # so each node tokenizes once and later runs not at all; null turns the cache off.
    cache_dir: str | None = operational("~/.cache/ner/features")


@dataclass
class OptimConfig:
    # Peak learning rate. The recipe keys (ner_recipe: this one, warmup_steps, epochs, batch_size,
    # eval_batch_size) default to the pretrained fine-tuning recipe when model.name_or_path is
    # set (the reference card's: 2e-5, no warm-up, 3 epochs, batch 3) and to the tiny random-init
    # model's when it is null (3e-3, warm-up 20, 10 epochs, batch 16, eval batch 64).
    lr: float = recipe(2e-5, 3e-3, above=0)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = key(1e-8, above=0)
    # Decoupled weight decay (AdamW), never on biases and norm weights; 0: plain Adam (the card).
    weight_decay: float = key(0.0, at_least=0)
    # The head's peak learning rate; null: lr.
    head_lr: float | None = key(None, above=0)
    # Layer-wise decay: encoder layer l of L at lr * layer_decay^(L-l), the embeddings at
    # lr * layer_decay^L (ner/optimization.py); null: every encoder parameter at lr.
    layer_decay: float | None = key(None, above=0)
    # The learning-rate schedule, by transformers' name (get_scheduler): linear (warm-up, then
    # linear decay to 0 at the last step), cosine, cosine_with_restarts (one cycle), polynomial
    # (power 1, to 1e-7), constant (no warm-up), constant_with_warmup, inverse_sqrt.
    schedule: Schedule = Schedule["linear"]
    # Linear warm-up from 0, in optimizer steps.
    warmup_steps: int = recipe(0, 20, at_least=0)
    # The warm-up as a share of the optimizer steps instead (rounded up, as the Trainer does);
    # null: warmup_steps. Set, it replaces warmup_steps's recipe default (and an experiment's 0);
    # a nonzero warmup_steps given beside it is refused. An extended run's new plan warms up over
    # this share of its new total.
    warmup_ratio: float | None = key(None, at_least=0, below=1)
    # Gradient-norm clipping; 0 turns it off. 1.0 is the Hugging Face Trainer default.
    max_grad_norm: float = key(1.0, at_least=0)
    # The training loss's variants (ner/loss.py; evaluation's loss stays plain cross-entropy):
    # label smoothing (torch's), and a weight per label: null (all 1), inverse_frequency (from
    # the training windows' labels: n / (labels * n_label)), or a list, one per label in the
    # data's label order. A step's loss is divided by the summed weights of its labelled tokens.
    label_smoothing: float = key(0.0, at_least=0, below=1)
    class_weights: Any = None  # (Any: a string or a list of numbers)


@dataclass
class TrainerConfig:
    # Epochs of training. A finished run resumed with more epochs goes on training, the rest of the
    # schedule planned for the new total (README: "Extending a finished run").
    epochs: int = recipe(3, 10, at_least=1)
    # Sentences per process per micro-step. The global batch is
    # batch_size * world_size * grad_accum_steps.
    batch_size: int = recipe(3, 16, at_least=1)
    # Sentences per process per evaluation batch.
    eval_batch_size: int = recipe(3, 64, at_least=1)
    grad_accum_steps: int = key(1, at_least=1)
    # Batch sentences of similar length (shuffled in chunks, like the Trainer's group_by_length):
    # less padding, same examples once per epoch.
    group_by_length: bool = True
    # fp32, bf16 or fp16: the forward pass under autocast to that type (weights, optimizer and
    # loss stay fp32); fp16 adds a grad scaler. bf16 runs on CUDA and on the CPU (CPU autocast);
    # fp16 needs CUDA and is refused on the CPU (torch's CPU fp16 kernels are few and slow).
    precision: Precision = Precision["fp32"]
    # Recompute each encoder layer's activations in the backward pass instead of keeping them
    # (transformers' activation checkpointing, non-reentrant): less memory, a slower step,
    # the same numbers (in fp32, to the bit: tests/test_precision.py).
    gradient_checkpointing: bool = False
    # How several processes train one model. ddp: each rank holds all of it (DDP). fsdp: FSDP2
    # (ner/sharding.py) shards parameters, gradients and AdamW state over the ranks (1/N each),
    # for a model past one device; the same loop and numbers (to rounding; bf16: parameters cast
    # to bf16, fp32 gradient reduction), checkpoints sharded (DCP; either resumes). No fp16.
    strategy: Strategy = operational(Strategy["ddp"])
    # torch.compile the model for training and evaluation (the same computation, other
    # kernels). null (auto): on CUDA with one process and trainer.strategy=ddp, in mode
    # reduce-overhead: CUDA graphs replay a step's ~1000 small kernels in one launch (the batch-3
    # step is launch-bound), one graph per length bucket (trainer.length_buckets); off on the
    # CPU, where compiling costs more than it saves, and under fsdp or on several processes,
    # where graphs cannot hold the collectives: the run says at start which it chose and why.
    # true: compile wherever (reduce-overhead on CUDA with one process, default mode
    # otherwise); false: eager.
    compile: bool | None = operational(None)
    # Capture each whole optimizer step (zero the gradients, forward, backward, clipping, the
    # fused AdamW update, the loss bookkeeping) in one CUDA graph per batch shape and replay it:
    # the host launches one graph where an eager step launches ~1000 kernels (ner/step_graphs.py).
    # A shape's first step runs eagerly (it allocates the optimizer state, what capture needs),
    # its second is captured; the learning rate reaches the graph as a device tensor. It serves
    # on CUDA with one process, trainer.strategy=ddp, grad_accum_steps 1, fp32 or bf16 and no
    # gradient checkpointing; elsewhere the run says so at start and runs without it.
    # Evaluation's forward pass is graphed likewise. With trainer.compile=true the graphs hold
    # the compiler's kernels (mode default); otherwise eager ones.
    # Every step computes what the eager loop does, in the same kernels (to float rounding).
    step_graphs: bool = operational(False)
    # Pad every training and evaluation batch to one of a few lengths (sub-tokens) and fill its
    # rows up to the batch size, so that a step's shapes repeat: CUDA graphs and torch.compile
    # record one per shape, and a batch of a new length costs a recompilation. `window`: 16, 24,
    # 32, 48, 64, 96, 128, ... (multiples of 8, each at most 1.5x the one before) up to the
    # model's window (model.max_length); a list: those lengths (the window is added); null or
    # []: each batch padded to its longest window (rounded up to 8 on CUDA). auto: `window` on
    # CUDA, null on the CPU, where nothing is recorded per shape and a padded position costs
    # its full compute (ner/batching.py bucket_lengths). The padding is masked (attention 0,
    # label -100): the same numbers to float rounding, except that dropout draws its masks over
    # the padded shape, so with dropout on the draws differ (the same distribution).
    length_buckets: Any = operational("auto")
    # cpu, cuda, or auto (cuda:LOCAL_RANK when available).
    device: Device = operational(Device["auto"])
    # One device's memory in GiB: a run whose model state per rank (printed at start, ner/memory.py;
    # activations not counted) exceeds it is refused in one line before it starts; null: no check.
    device_memory_gib: float | None = operational(None, above=0)
    # Optimizer steps between train/loss and train/lr logs (the loss is read from the device then).
    log_every: int = operational(50, at_least=1)
    # DataLoader worker processes; 0 loads in the training process.
    num_workers: int = operational(0, at_least=0)
    # Torch intra-op threads per process; null leaves torch's default (one per core; torchrun
    # sets OMP_NUM_THREADS=1 for several processes per node). Waiting threads sleep instead of
    # spinning (OMP_WAIT_POLICY=PASSIVE, ner/__init__.py), so cores other processes share cost
    # little. The count changes the order of float reductions (a matmul or a sum adds one partial
    # sum per thread), so every step differs in its last bits and a run drifts (the demo's test
    # F1 0.9651 at one count, 0.9618 at another): bit for bit only at one count. Operational all the same, as `device`
    # is: a run may resume on a machine with other cores, and goes on as a run at that count would.
    threads: int | None = operational(None, at_least=1)
    # Checkpoint every N optimizer steps as well as every epoch; 0 = per epoch only. An interrupted
    # run (SIGTERM, SIGINT, SIGUSR1, SIGUSR2) also checkpoints at the step it stops at.
    save_every_steps: int = operational(0, at_least=0)
    # Step checkpoints kept besides last and best.
    keep_last: int = operational(1, at_least=0)
    # Checkpoints kept once the run has finished (best_model/, the export, always stays):
    # all: every one; ner-evaluate --checkpoint best|last|step-N, and the run can be extended.
    # best: best.pt (last.pt and step-N.pt removed); ner-evaluate RUN scores best.pt.
    # none: no checkpoint; ner-evaluate RUN scores best_model/.
    # With best or none, ner-report and the same command (nothing to do) work as with all, but
    # the run can no longer be extended (trainer.epochs raised): that is refused in one line.
    keep_checkpoints: KeepCheckpoints = operational(KeepCheckpoints["all"])
    # auto: resume from <run dir>/checkpoints/last.pt when it exists; never; or a checkpoint path.
    resume: str = operational("auto")
    # Metric that picks the best checkpoint (a key of the eval entry of log_history.json). The
    # default is F1 on the training languages' validation sets: eval_f1 when every evaluation
    # set is one (their macro mean when several), else the one training set's eval_<set>_f1, else
    # eval_training_f1 (their mean); extra evaluation files and zero-shot languages are scored and
    # tested but select nothing unless named here (XTREME's rule).
    monitor: str = "${ner_monitor:}"
    # Whether higher (max) or lower (min) is better: by default the metric's own direction
    # (loss: min, scores: max; ner/metrics.py); a contradictory explicit mode is refused.
    monitor_mode: MonitorMode = "${ner_monitor_mode:}"  # type: ignore[assignment]
    # Stop after this many evaluations without improvement of `monitor`; 0 = never.
    early_stopping_patience: int = operational(0, at_least=0)
    # Evaluate the best model on the test split at the end, when the dataset has one.
    eval_test: bool = operational(True)
    # Resamples of the bootstrap 95% intervals of the test precision, recall and F1 (over the
    # test sentences, seed 0: ner/report/outcome.py), logged in the test entry and on the card;
    # 0 = none. They cost less than seqeval's scoring of the same split.
    bootstrap: int = operational(1000, at_least=0)
    # Interrupt the run after this many optimizer steps in total, as a kill would (no evaluation,
    # no final reports; checkpoints as configured). For tests and debugging; 0 = never.
    stop_after_steps: int = operational(0, at_least=0)
    # Progress on rank 0: a bar on a terminal; otherwise (nohup, Slurm, a pipe) a line every
    # log_every steps (step, epoch, loss, lr, samples/s, elapsed, ETA), which train.log gets too.
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
    """Register the schema so `conf/config.yaml` can extend it (`defaults: [base_config, ...]`);
    the resolvers its defaults and configs name are registered by ner/resolvers.py."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)


def fields(schema: type = Config, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field]]:
    """(dotted key, dataclass field) of every key of the schema."""
    for f in dataclasses.fields(schema):
        if schema is Config and f.name in _SUBSCHEMAS:
            yield from fields(_SUBSCHEMAS[f.name], f"{f.name}.")
        else:
            yield prefix + f.name, f


# A config by its dotted keys (`data.config`): the keys the schema does not declare, a saved
# config read back through the schema, and the keys that changed what a run computes between a
# saved config and a new one (resume: ner/run/start.py).


def unknown_keys(cfg: Any) -> list[str]:
    """Keys of `cfg` that the schema does not declare (`+key=value` adds keys past Hydra)."""
    known = {name for name, _ in fields()}
    return [k for k in flatten(OmegaConf.to_container(cfg)) if k not in known]


def flatten(d: dict, prefix: str = "") -> dict:
    """Dotted key -> value, down to the schema's keys: a mapping that a key holds as its value
    (data.extra_eval_files) is one value, compared whole."""
    declared = {name for name, _ in fields()}
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and f"{prefix}{k}" not in declared:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def saved_config(saved: Any) -> Any:
    """A saved config (a checkpoint's resolved YAML, a run's config.yaml, or their dict) read
    through the schema, as the code of today reads it: a key the saved config lacks (it was
    written by an older version) reads as its default, recipe keys following the saved run's
    model; a key the schema no longer has is dropped. Resume compares with it, and ner-evaluate
    and ner-predict run with it."""
    if isinstance(saved, str):
        saved = yaml.safe_load(saved)
    values = flatten(OmegaConf.to_container(OmegaConf.create(saved), resolve=True))
    known = {name for name, _ in fields()}
    cfg = OmegaConf.structured(Config)
    for name, value in values.items():
        if name in known:
            OmegaConf.update(cfg, name, value, merge=False)
    return cfg


def computed_differences(saved: dict, cfg: Any, ignore: tuple[str, ...] = ()) -> list[str]:
    """ "key: old -> new" for each key that changes what a run computes, between a saved config
    (a plain dict, as a checkpoint holds it; read by `saved_config`) and `cfg`. Operational keys
    and `ignore` may differ freely."""
    keys = {name: f.metadata.get("operational", False) for name, f in fields()}
    old = flatten(OmegaConf.to_container(saved_config(saved), resolve=True, enum_to_str=True))
    new = flatten(
        OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    )  # 'fp32', not an enum
    compared = [k for k, free in keys.items() if not free and k not in ignore]
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in compared if old.get(k) != new.get(k)]

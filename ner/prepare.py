"""Everything the loop needs before its first step: data, tokenizer, features, the memory
estimate (ner/memory.py: a model that cannot fit trainer.device_memory_gib is refused before it
is built), model (with trainer.gradient_checkpointing), the training objective (`prepare`,
before the run is accepted); then the model on the device, wrapped by DDP or sharded
(trainer.strategy, ner/sharding.py), and the training state with its optimizer, schedule and
grad scaler (`on_device`, `training_state`, once it is).

Rank 0 trains the tiny model's tokenizer (once per run directory: a resumed run reuses it) and
every rank loads it from disk, so all ranks tokenize identically. Statistics and repairs are
printed on rank 0 before training starts, for every training source and evaluation set.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel as DDP

from ner import distributed, memory, sharding
from ner.checkpoint import Progress, TrainState
from ner.data.corpus import Corpus, load_corpus
from ner.data.sentences import Sentence, entity_counts
from ner.errors import UserError
from ner.features import FeatureStats, cache_key, cached_features, encode_split, unknown_words
from ner.loss import Objective, objective
from ner.model import build_model, encoder_layers, model_config, window_length
from ner.optimization import build_optimizer, build_schedule
from ner.precision import grad_scaler
from ner.tokenizer import load_tokenizer, tokenizer_from_spec, train_tokenizer


@dataclass
class EncodedSet:
    """An evaluation set ready to score: per split ("validation", maybe "test") its features
    (one dict per window), the gold tags of every word of every sentence, and statistics."""

    name: str
    source: str
    features: dict[str, list[dict]]
    gold: dict[str, list[list[str]]]
    stats: dict[str, FeatureStats]


@dataclass
class Prepared:
    corpus: Corpus
    labels: list[str]
    tokenizer: object
    max_length: int
    train: list[dict]  # the windows of every training source, source after source
    train_sources: list[tuple[str, int]]  # (name, windows) of each training source, in order
    train_stats: dict[str, FeatureStats]
    eval_sets: list[EncodedSet]
    model: torch.nn.Module
    save_tokenizer: bool  # not yet in the run dir (trained, or another run's): saved once accepted
    objective: Objective  # the training loss (optim.label_smoothing, optim.class_weights)

    @property
    def stats(self) -> dict[str, FeatureStats]:
        """Every split's statistics, keyed as printed ("train", "validation (he)", ...)."""
        return {**self.train_stats, **{k: v for s in self.eval_sets for k, v in s.stats.items()}}


def tokenizer_for(
    model_cfg, corpus: Corpus, run_dir: Path, resumed_from: Path | None, env: distributed.Env
):
    """The run's tokenizer, and whether it must be saved into `run_dir` once the run is accepted.
    A resumed tiny-model run reads the one the checkpoint's own run saved (beside the
    checkpoints/ of `resumed_from`: a run resumed from another directory's checkpoint continues
    on that run's token ids, and keeps a copy); a fresh one trains its own on rank 0 and hands it
    to every rank in memory: nothing of an attempt that was refused or failed before a checkpoint
    is reused, and nothing is written before acceptance. A resumed run whose tokenizer cannot be
    read trains it again (and saves it once accepted)."""
    if model_cfg.name_or_path is not None:
        return load_tokenizer(model_cfg.name_or_path), False
    if resumed_from is not None:
        saved = Path(resumed_from).resolve().parent.parent / "tokenizer"
        problem = None  # decided on rank 0, so that every rank takes the same way
        if env.is_main:
            try:
                load_tokenizer(saved)
            except UserError as e:  # torn (a kill inside a write that was not atomic) or removed
                problem = str(e)
        if distributed.broadcast_object(problem, env) is None:
            return load_tokenizer(saved), saved != (run_dir / "tokenizer").resolve()
        distributed.print0(
            env,
            f"warning: {problem}; trained again on the training sentences (the same sentences "
            "give the same tokenizer, to the byte)",
            file=sys.stderr,
        )
    spec = None
    if env.is_main:
        sentences = (s.tokens for _, source in corpus.train for s in source)
        spec = train_tokenizer(sentences, model_cfg.vocab_size).backend_tokenizer.to_str()
    return tokenizer_from_spec(distributed.broadcast_object(spec, env)), True


def prepare(
    cfg, env: distributed.Env, run_dir: Path, printer, resumed_from: Path | None = None
) -> Prepared:
    """Read, check and encode the data and build the model; writes nothing in `run_dir` (a run
    refused here leaves it as it was)."""
    corpus = load_corpus(cfg.data)
    tokenizer, to_save = tokenizer_for(cfg.model, corpus, run_dir, resumed_from, env)
    architecture = model_config(cfg.model, corpus.labels, tokenizer)
    max_length = window_length(cfg.model.max_length, tokenizer, architecture)
    printer(
        f"data: {corpus.source}; labels {', '.join(corpus.labels)}; windows of {max_length} "
        "sub-tokens"
    )
    # One report per training source, then per split of every set, in the order below; each
    # names its split as the run prints it ("train", or "train (he)", "validation (ar)").
    reports = iter(corpus.reports)
    label_id = {name: i for i, name in enumerate(corpus.labels)}

    def encode(sentences: list[Sentence]) -> tuple[str, list[dict], FeatureStats]:
        report = next(reports)
        label = report.split
        tokens = [s.tokens for s in sentences]
        tags = [[label_id[t] for t in s.tags] for s in sentences]
        stride = cfg.model.window_stride
        key = cache_key(tokens, tags, corpus.labels, tokenizer, max_length, stride)
        build = partial(encode_split, tokenizer, tokens, tags, max_length, stride)
        features, stats = cached_features(cfg.data.cache_dir, key, build, env)
        counts = ", ".join(f"{k} {v}" for k, v in entity_counts(sentences).items())
        for line in [*report.lines(), *stats.lines(label), f"{label}: entities {counts}"]:
            printer(line)
        return label, features, stats

    train, train_sources, train_stats = [], [], {}
    for name, sentences in corpus.train:
        label, features, stats = encode(sentences)
        train += features
        train_stats[label] = stats
        train_sources.append((name, len(features)))
    tokenizer_of = cfg.model.name_or_path or "the tiny model"
    printer(
        unknown_words(train_stats, cfg.model.max_unknown_words, tokenizer_of, tokenizer.unk_token)
    )
    eval_sets = []
    for s in corpus.eval_sets:
        encoded = EncodedSet(s.name, s.source, {}, {}, {})
        for split, sentences in s.sentences.items():
            label, encoded.features[split], stats = encode(sentences)
            encoded.stats[label] = stats
            encoded.gold[split] = [list(x.tags) for x in sentences]
        eval_sets.append(encoded)
    # Counted on a meta-device twin, so a model that cannot fit is refused before it is built.
    memory_line = memory.check(cfg, architecture, env.world_size)
    model = build_model(cfg.model, architecture, cfg.seed)
    if cfg.trainer.gradient_checkpointing:  # in training only (transformers checks model.training)
        if not model.supports_gradient_checkpointing:
            raise UserError(
                f"config: trainer.gradient_checkpointing=true: {type(model).__name__} does not "
                "support it"
            )
        model.activation_checkpointing_enable({"use_reentrant": False})
    if cfg.trainer.strategy == "fsdp":  # refused here, before the run is accepted
        encoder_layers(model, sharding.KEY)  # each layer is sharded apart
    n_params = sum(p.numel() for p in model.parameters())
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)  # model.freeze_*
    name = cfg.model.name_or_path or "tiny XLM-R (random init)"
    printer(
        f"model: {name}, {n_params / 1e6:.2f}M parameters"
        + (f", {frozen / 1e6:.2f}M of them frozen" if frozen else "")
    )
    printer(memory_line)
    return Prepared(
        corpus,
        corpus.labels,
        tokenizer,
        max_length,
        train,
        train_sources,
        train_stats,
        eval_sets,
        model,
        to_save,
        objective(cfg.optim, corpus.labels, train, env.device),
    )


def compile_plan(trainer_cfg, env: distributed.Env) -> tuple[str | None, str]:
    """trainer.compile for this run: torch.compile's mode (None: eager) and the words the run's
    start line says about it, the reason included when auto does not compile."""
    setting = trainer_cfg.compile
    graphs = env.device.type == "cuda" and not env.distributed
    mode = "reduce-overhead" if graphs else "default"
    if setting is False:
        return None, "eager (trainer.compile=false)"
    if setting is True:
        return mode, f"torch.compile, mode {mode} (trainer.compile=true)"
    if env.device.type != "cuda":
        return None, "eager (trainer.compile=auto: not on the CPU, where compiling costs more)"
    if trainer_cfg.strategy == "fsdp" or env.distributed:
        why = "fsdp" if trainer_cfg.strategy == "fsdp" else f"{env.world_size} processes"
        return (
            None,
            f"eager (trainer.compile=auto: CUDA graphs cannot hold the collectives of {why})",
        )
    return (
        mode,
        f"torch.compile, mode {mode}: one CUDA graph per length bucket (trainer.compile=auto)",
    )


def compiled(module: torch.nn.Module, mode: str | None) -> torch.nn.Module:
    """`module` as the loop calls it: compiled in `mode` (compile_plan), or itself (eager)."""
    return module if mode is None else torch.compile(module, mode=mode)


def on_device(model: torch.nn.Module, env: distributed.Env, trainer_cfg, mode: str | None):
    """The model on the run's device (TF32 matmuls on CUDA), for training: (the module whose
    gradients are synchronised: on several processes DDP, or under trainer.strategy=fsdp the
    model itself, sharded in place (ner/sharding.py); the module the loop calls, compiled in
    torch.compile's `mode`, or eager when it is None: compile_plan)."""
    model.to(env.device)
    if env.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if trainer_cfg.strategy == "fsdp":
        wrapped = sharding.shard(model, env, trainer_cfg.precision)
    elif env.distributed:
        wrapped = DDP(model, device_ids=[env.local_rank] if env.device.type == "cuda" else None)
    else:
        wrapped = model
    return wrapped, compiled(wrapped, mode)


def training_state(cfg, data: Prepared, total_steps: int, device: torch.device) -> TrainState:
    """A fresh run's state for `total_steps` optimizer steps: the model (on the device), the
    optimizer and schedule of cfg.optim (ner/optimization.py), the grad scaler of
    trainer.precision (ner/precision.py); a resumed run then restores its checkpoint into it."""
    optimizer = build_optimizer(cfg.optim, data.model, device)
    return TrainState(
        data.model,
        optimizer,
        build_schedule(optimizer, cfg.optim, total_steps),
        grad_scaler(device, cfg.trainer.precision),
        Progress(schedule=[[0, total_steps]]),
        history=[],
        labels=data.labels,
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        data=data.corpus.fingerprints,
    )

"""Load a trained model for evaluation or prediction: from a run directory, a checkpoint file, or
an exported Hugging Face directory.

- A run directory (it holds `checkpoints/`): weights from `checkpoints/<name>.pt` (`best` by
  default), the configuration saved inside that checkpoint (the resolved config the weights were
  trained with; `.hydra/config.yaml` when a checkpoint has none), the run's `tokenizer/` (tiny
  model), else `best_model/`'s, else the configured model's. A saved config is read through the
  schema (ner.config.saved_config), so a key added since an old run reads as its default. A
  finished run whose checkpoints trainer.keep_checkpoints=none removed is read from its
  `best_model/`.
- A checkpoint file (`.../checkpoints/step-500.pt`): the same, from that file.
- An exported directory (`<run>/best_model`, or any token-classification model with
  `config.json`): weights, tokenizer and labels (`config.id2label`) from the directory. When it
  sits inside a run directory, that run's config supplies the window size, batch size and data.

Whatever the source, the caller gets the model in eval mode on its device, the tokenizer, the
label list in id order, and the same window size and stride that training used.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from ner import checkpoint as ckpt_io
from ner.config import ModelConfig, saved_config
from ner.data.checks import parse_labels
from ner.errors import UserError
from ner.model import build_model, load_export, model_config, window_length
from ner.run.layout import launch_file
from ner.tokenizer import load_tokenizer

DEFAULT_BATCH_SIZE = 32  # sentences per batch when no run config says otherwise


@dataclass
class Loaded:
    model: torch.nn.Module  # in eval mode, on the requested device
    tokenizer: object
    labels: list[str]  # label names in id order
    max_length: int  # window in sub-tokens, special tokens included (as in training)
    stride: int  # sub-tokens of context on each side of a window's labelled part
    path: Path  # the checkpoint file or exported directory the weights came from
    checkpoint: str  # "best", "last", "step-500" (the file's stem), or "hf" for an export
    run_dir: Path | None  # the run the weights belong to, when known
    cfg: DictConfig | None  # that run's resolved config
    epoch: float | None  # epochs completed when the weights were saved (checkpoints only)
    step: int | None  # optimizer steps done then

    @property
    def batch_size(self) -> int:
        """The run's evaluation batch size, so results match its log exactly."""
        return self.cfg.trainer.eval_batch_size if self.cfg is not None else DEFAULT_BATCH_SIZE

    @property
    def precision(self) -> str:
        return self.cfg.trainer.precision if self.cfg is not None else "fp32"


def load(
    target: str | Path, checkpoint: str | None = None, device: torch.device | None = None
) -> Loaded:
    """Load `target` (run dir, checkpoint file or exported dir); see the module docstring.

    `checkpoint` picks `checkpoints/<checkpoint>.pt` of a run directory (default "best"); it is
    refused for a checkpoint file or an exported directory, which hold one set of weights.
    """
    device = device or torch.device("cpu")
    path = Path(target)
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if path.is_file():
        if checkpoint is not None:
            raise UserError(f"{path}: --checkpoint applies to a run directory, not to a file")
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else None
        loaded = _from_checkpoint(path, run_dir)
    elif (path / "checkpoints").is_dir():
        name = checkpoint or "best"
        file = path / "checkpoints" / f"{name}.pt"
        if name == "best" and file.is_file():  # the record's best epoch, whichever file has it
            file, line = ckpt_io.record_best(path / "checkpoints")
            if line:
                print(f"warning: {line}", file=sys.stderr)
        export = path / "best_model"
        if not file.is_file() and checkpoint is None and (export / "config.json").is_file():
            loaded = _from_export(export)  # trainer.keep_checkpoints=none removed best.pt
        elif not file.is_file():
            have = sorted(p.stem for p in (path / "checkpoints").glob("*.pt"))
            raise UserError(
                f"run dir {path}: no checkpoint {file.name} (found: {', '.join(have) or 'none'}"
                "; best.pt is written after the first evaluation, and a finished run keeps "
                "those trainer.keep_checkpoints kept)"
            )
        else:
            loaded = _from_checkpoint(file, path)
    elif (path / "config.json").is_file():
        if checkpoint is not None:
            raise UserError(
                f"{path}: an exported model holds one set of weights; --checkpoint applies to "
                "a run directory"
            )
        loaded = _from_export(path)
    else:
        raise UserError(
            f"{path}: neither a run directory (no checkpoints/) nor an exported model (no "
            "config.json)"
        )
    loaded.model.to(device).eval()
    return loaded


def run_config(run_dir: Path) -> DictConfig | None:
    """The run's config as its newest attempt was launched (ner/run/layout.py), read through
    the schema (ner.config.saved_config: keys added since read as their defaults), or None."""
    file = launch_file(run_dir, "config.yaml")
    if not file.is_file():
        return None
    return saved_config(file.read_text(encoding="utf-8"))


def _from_checkpoint(file: Path, run_dir: Path | None) -> Loaded:
    ckpt = ckpt_io.load(file)
    labels = list(ckpt["labels"])
    # The config saved with the weights is the one they were trained with (resolved), read
    # through the schema as run_config reads a run's.
    if ckpt.get("config"):
        cfg = saved_config(ckpt["config"])
    else:
        cfg = run_config(run_dir) if run_dir is not None else None
    if cfg is None:
        raise UserError(
            f"checkpoint {file}: holds no config, and no run directory around it has one"
        )
    tokenizer = _run_tokenizer(cfg, run_dir, file)
    # A pretrained model's architecture from the run's export when it has one (no hub), else
    # from the model's name; no pretrained weights are loaded just to be overwritten.
    export = run_dir / "best_model" if run_dir else None
    source = export if export and (export / "config.json").is_file() else None
    architecture = model_config(cfg.model, labels, tokenizer, source)
    model = build_model(cfg.model, architecture, cfg.seed, pretrained=False)
    ckpt_io.check_compatible(ckpt, file, labels, model)
    model.load_state_dict(ckpt_io.weights(ckpt, file))  # a sharded last.pt's too
    progress = ckpt.get("progress") or {}
    return Loaded(
        model=model,
        tokenizer=tokenizer,
        labels=labels,
        max_length=window_length(cfg.model.max_length, tokenizer, architecture),
        stride=cfg.model.window_stride,
        path=file,
        checkpoint=file.stem,
        run_dir=run_dir,
        cfg=cfg,
        epoch=float(progress["epoch"]) if "epoch" in progress else None,
        step=progress.get("global_step"),
    )


def _run_tokenizer(cfg: DictConfig, run_dir: Path | None, file: Path):
    """The tokenizer the run trained with: its own (tiny model), its export's, or the model's."""
    candidates = [run_dir / "tokenizer", run_dir / "best_model"] if run_dir else []
    for directory in candidates:
        if (directory / "tokenizer.json").is_file() or (
            directory / "tokenizer_config.json"
        ).is_file():
            return load_tokenizer(directory)
    if cfg.model.name_or_path is None:
        raise UserError(
            f"checkpoint {file}: the tiny model's tokenizer was trained in its run directory, "
            f"but no tokenizer/ was found next to it ({run_dir or 'no run directory'})"
        )
    return load_tokenizer(cfg.model.name_or_path)


def _from_export(directory: Path) -> Loaded:
    model = load_export(directory)
    id2label = model.config.id2label
    labels = [id2label[i] for i in range(len(id2label))]
    try:
        parse_labels(labels)  # an export of another task has LABEL_0, ...: refuse it here
    except UserError as e:
        raise UserError(f"{directory}: not an NER model with IOB2 labels ({e})") from e
    tokenizer = load_tokenizer(directory)
    run_dir = directory.parent if (directory.parent / "checkpoints").is_dir() else None
    cfg = run_config(run_dir) if run_dir else None
    max_length = window_length(cfg.model.max_length if cfg else None, tokenizer, model.config)
    stride = cfg.model.window_stride if cfg else ModelConfig.window_stride
    return Loaded(
        model=model,
        tokenizer=tokenizer,
        labels=labels,
        max_length=max_length,
        stride=stride,
        path=directory,
        checkpoint="hf",
        run_dir=run_dir,
        cfg=cfg,
        epoch=None,
        step=None,
    )

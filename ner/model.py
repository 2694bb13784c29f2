"""An encoder with a token-classification head: one factory for every way a model is made.

`model_config` gives the architecture: the tiny random-init XLM-R of the demo and the tests
(`model.name_or_path` null), or a pretrained model's (a hub name or a local directory) with this
run's labels. `build_model` makes the model from it: with the pretrained weights for training,
without weights when a checkpoint's state dict follows. `load_export` reads an exported model
directory. The head is a named part (ner/heads.py); `window_length` is the one rule for how many
sub-tokens a window holds (`position_limit`: what the model's positions allow); `encoder_family`
names the encoder for people. `depths` places each parameter in the encoder's stack (embeddings,
layer 1..L, head), found from the model's structure: layer-wise learning rates
(ner/optimization.py) and freezing (`freeze`: model.freeze_embeddings, model.freeze_layers) read it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    PretrainedConfig,
    PreTrainedTokenizerBase,
    XLMRobertaConfig,
)

from ner import heads
from ner.errors import UserError
from ner.tokenizer import cannot_load


def model_config(
    model_cfg, labels: list[str], tokenizer, source: str | Path | None = None
) -> PretrainedConfig:
    """The architecture with this run's labels. `source`: where a pretrained model's config is
    read (default model.name_or_path; a run's export avoids the hub)."""
    id2label = dict(enumerate(labels))
    label2id = {name: i for i, name in id2label.items()}
    dropout = {}
    if model_cfg.dropout is not None:
        dropout = {
            "hidden_dropout_prob": model_cfg.dropout,
            "attention_probs_dropout_prob": model_cfg.dropout,
        }
    if model_cfg.name_or_path is None:
        return XLMRobertaConfig(
            vocab_size=len(tokenizer),
            hidden_size=model_cfg.hidden_size,
            num_hidden_layers=model_cfg.num_layers,
            num_attention_heads=model_cfg.num_heads,
            intermediate_size=model_cfg.intermediate_size,
            max_position_embeddings=model_cfg.max_position_embeddings,
            type_vocab_size=1,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            num_labels=len(labels),
            id2label=id2label,
            label2id=label2id,
            **dropout,
        )
    source = source or model_cfg.name_or_path
    try:
        config = AutoConfig.from_pretrained(
            str(source), num_labels=len(labels), id2label=id2label, label2id=label2id
        )
    except OSError as e:
        raise cannot_load("a config", source, e) from e
    # A config takes any attribute: one the model does not read would be a dropout never applied.
    unknown = [key for key in dropout if not hasattr(config, key)]
    if unknown:
        raise UserError(
            f"config: model.dropout={model_cfg.dropout}: a {config.model_type} model has no "
            f"{' or '.join(unknown)}; leave model.dropout null for this model"
        )
    for key, value in dropout.items():
        setattr(config, key, value)
    return config


def build_model(
    model_cfg, config: PretrainedConfig, seed: int, pretrained: bool = True
) -> torch.nn.Module:
    """The model of `config` with the head model.head; its weights are identical on every rank
    for one seed. `pretrained`: load model.name_or_path's weights (training); else none (a
    checkpoint's state dict comes next)."""
    torch.manual_seed(seed)  # the head (and the tiny model) start from the same weights everywhere
    if pretrained and model_cfg.name_or_path is not None:
        try:
            model = AutoModelForTokenClassification.from_pretrained(
                model_cfg.name_or_path, config=config
            )
        except OSError as e:
            raise cannot_load("the weights", model_cfg.name_or_path, e) from e
        except SafetensorError as e:
            raise torn_weights(model_cfg.name_or_path, e) from e
    else:
        model = AutoModelForTokenClassification.from_config(config)
    model = heads.attach(model, model_cfg.head)
    freeze(model, model_cfg)
    return model


def load_export(directory: Path) -> torch.nn.Module:
    """An exported model (Hugging Face format), with the head its config names."""
    try:
        config = AutoConfig.from_pretrained(str(directory))
        head = getattr(config, "ner_head", "linear")
        if head == "linear":
            return AutoModelForTokenClassification.from_pretrained(str(directory))
        model = heads.attach(AutoModelForTokenClassification.from_config(config), head)
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(directory / "model.safetensors")))
        return model
    except SafetensorError as e:
        raise torn_weights(directory, e) from e
    except (OSError, ValueError) as e:
        raise UserError(f"{directory}: cannot load a token-classification model: {e}") from e


def torn_weights(source: str | Path, error: SafetensorError) -> UserError:
    """The one line for a weights file safetensors cannot read (cut short: an interrupted
    copy), naming the first such file of a local directory (of several shards, the torn one)."""
    from safetensors import safe_open

    def torn(path: Path) -> bool:
        try:
            safe_open(str(path), "pt")  # reads the header, checks it covers the whole file
        except SafetensorError:
            return True
        return False

    files = sorted(Path(source).glob("*.safetensors")) if Path(source).is_dir() else []
    where = next((f for f in files if torn(f)), source)
    return UserError(
        f"model: {where} cannot be read ({type(error).__name__}: {error}); the file is torn "
        "(an interrupted copy?): copy it again"
    )


# How a model family is written, by its config's model_type; others: the config class's name.
FAMILIES = {
    "xlm-roberta": "XLM-RoBERTa",
    "xlm-roberta-xl": "XLM-RoBERTa-XL",
    "bert": "BERT",
    "roberta": "RoBERTa",
    "deberta": "DeBERTa",
    "deberta-v2": "DeBERTa-v2",
    "electra": "ELECTRA",
    "distilbert": "DistilBERT",
    "camembert": "CamemBERT",
    "mpnet": "MPNet",
}


def encoder_family(config: PretrainedConfig) -> str:
    """The encoder's family as people write it (BERT, XLM-RoBERTa, ...), from its config."""
    return FAMILIES.get(config.model_type) or type(config).__name__.removesuffix("Config")


def position_limit(config: PretrainedConfig) -> int | None:
    """The longest input the model's absolute position table holds, or None when it has none.

    BERT, ELECTRA and DeBERTa-v1 look positions 0.. up in a table of max_position_embeddings
    rows. RoBERTa-style models (XLM-R, CamemBERT) number positions from pad_token_id + 1, so
    pad + 1 rows are never used by text. DeBERTa-v2/v3 with position_biased_input false add no
    absolute positions at all (relative attention, with clamped or log-bucketed distances,
    takes any length): their max_position_embeddings bounds nothing.
    """
    if getattr(config, "position_biased_input", True) is False:
        return None
    positions = getattr(config, "max_position_embeddings", None)
    if not positions:
        return None
    if "roberta" in config.model_type or config.model_type == "camembert":
        positions -= (config.pad_token_id or 0) + 1  # positions start after the pad id
    return positions


DEFAULT_WINDOW = 512  # when neither the tokenizer nor the model bounds the length


def window_length(
    max_length: int | None, tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig
) -> int:
    """Sub-tokens in a window, special tokens included: model.max_length when set, else the
    tokenizer's limit capped at 512; never more than the model's position table holds."""
    positions = position_limit(config)
    if max_length is not None:
        if positions is not None and max_length > positions:
            raise UserError(
                f"config: model.max_length={max_length} is more than the {positions} positions "
                f"of the model ({config.model_type}); set model.max_length<={positions} or null"
            )
        return max_length
    limit = tokenizer.model_max_length
    length = min(limit, DEFAULT_WINDOW) if limit and limit < 10**6 else DEFAULT_WINDOW
    return min(length, positions) if positions is not None else length


def encoder_layers(model: torch.nn.Module, key: str) -> torch.nn.ModuleList:
    """The encoder's stack of layers, bottom first: the one ModuleList of num_hidden_layers
    modules under the base model (BERT, RoBERTa, XLM-R, ELECTRA, DeBERTa: encoder.layer;
    DistilBERT: transformer.layer), found by structure, not by name. `key` names the config key
    that needs it, in the one-line refusal of a model where it cannot be found."""
    base, n = model.base_model, getattr(model.config, "num_hidden_layers", None)
    modules = base.named_modules() if base is not model else []  # no base model: no head apart
    found = [(name, m) for name, m in modules if isinstance(m, torch.nn.ModuleList) and len(m) == n]
    outermost = [
        (name, m) for name, m in found if not any(name.startswith(f"{o}.") for o, _ in found)
    ]
    if len(outermost) != 1:
        raise UserError(
            f"config: {key}: cannot find the encoder layers of this {encoder_family(model.config)} "
            f"model ({len(outermost)} lists of its {n} layers under its base model); leave {key} "
            "at its default for it"
        )
    return outermost[0][1]


def depths(model: torch.nn.Module, key: str) -> dict[str, int | None]:
    """Parameter name -> its place in the encoder's stack: 0 for the embeddings (every parameter
    of the base model outside its layers: the embedding tables and their norm, ELECTRA's
    embedding projection, DeBERTa's shared relative-position table), l for layer l of L (1 at the
    bottom), None for the head (every parameter outside the base model: the classifier)."""
    layers = encoder_layers(model, key)
    in_layer = {id(p): depth for depth, layer in enumerate(layers, 1) for p in layer.parameters()}
    base = {id(p) for p in model.base_model.parameters()}
    return {
        name: in_layer.get(id(p), 0) if id(p) in base else None
        for name, p in model.named_parameters()
    }


def freeze(model: torch.nn.Module, model_cfg) -> None:
    """model.freeze_embeddings and model.freeze_layers: the embeddings (depth 0 of `depths`) and
    the lowest N encoder layers get requires_grad False: no gradient, no optimizer state (the
    optimizer leaves them out); the checkpoint and the export still hold them, as trained."""
    frozen_depth = model_cfg.freeze_layers
    if not model_cfg.freeze_embeddings and not frozen_depth:
        return
    key = "model.freeze_layers" if frozen_depth else "model.freeze_embeddings"
    place = depths(model, key)
    n = model.config.num_hidden_layers
    if frozen_depth > n:
        raise UserError(
            f"config: model.freeze_layers={frozen_depth} is more than the {n} layers of the "
            f"encoder; set model.freeze_layers<={n}"
        )
    lowest = 0 if model_cfg.freeze_embeddings else 1
    for name, p in model.named_parameters():
        if place[name] is not None and lowest <= place[name] <= frozen_depth:
            p.requires_grad_(False)

"""XLM-R encoder with a token-classification head: one factory for every way a model is made.

`model_config` gives the architecture: the tiny random-init XLM-R of the demo and the tests
(`model.name_or_path` null), or a pretrained model's (a hub name or a local directory) with this
run's labels. `build_model` makes the model from it: with the pretrained weights for training,
without weights when a checkpoint's state dict follows. `load_export` reads an exported model
directory. The head is a named part (ner/heads.py); `window_length` is the one rule for how many
sub-tokens a window holds.
"""

from __future__ import annotations

from pathlib import Path

import torch
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
        return AutoConfig.from_pretrained(
            str(source), num_labels=len(labels), id2label=id2label, label2id=label2id, **dropout
        )
    except OSError as e:
        raise cannot_load("a config", source, e) from e


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
    else:
        model = AutoModelForTokenClassification.from_config(config)
    return heads.attach(model, model_cfg.head)


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
    except (OSError, ValueError) as e:
        raise UserError(f"{directory}: cannot load a token-classification model: {e}") from e


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


def window_length(
    max_length: int | None, tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig
) -> int:
    """Sub-tokens in a window, special tokens included: model.max_length when set, else the
    tokenizer's limit capped at 512 and at the model's position table."""
    if max_length is not None:
        return max_length
    limit = tokenizer.model_max_length
    length = min(limit, 512) if limit and limit < 10**6 else 512
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        if "roberta" in config.model_type or config.model_type == "camembert":
            positions -= (config.pad_token_id or 0) + 1  # positions start after the pad id
        length = min(length, positions)
    return length

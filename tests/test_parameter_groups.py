"""Parameter groups and freezing on tiny models built in-process: weight decay, the head's and
each layer's learning rate at a step, frozen parameters out of the optimizer, old runs' layout."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import transformers
from conftest import QUICK, compose, train_in_process
from transformers import AutoModelForTokenClassification

from ner.config import ModelConfig, OptimConfig, computed_differences, saved_config
from ner.errors import UserError
from ner.model import depths, freeze
from ner.optimization import (
    build_optimizer,
    build_schedule,
    check_groups,
    extend_schedule,
    logged_lr,
    no_decay,
)

SHAPE = dict(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2)
SHAPE["intermediate_size"] = 32
CONFIGS = {
    "bert": lambda: transformers.BertConfig(**SHAPE),
    "electra": lambda: transformers.ElectraConfig(embedding_size=8, **SHAPE),
    "xlm-roberta": lambda: transformers.XLMRobertaConfig(**SHAPE),
    "deberta-v2": lambda: transformers.DebertaV2Config(
        relative_attention=True, position_buckets=8, max_relative_positions=-1, **SHAPE
    ),
}
CPU = torch.device("cpu")


def tiny(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModelForTokenClassification.from_config(CONFIGS[family]())


def optim(**changes) -> SimpleNamespace:
    """cfg.optim with the schema's defaults (the tiny model's lr) and `changes`."""
    defaults = {"lr": 3e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}
    defaults.update(head_lr=None, layer_decay=None)
    defaults.update(schedule="linear", warmup_steps=0, warmup_ratio=None)
    return SimpleNamespace(**{**defaults, **changes})


def lr_of(optimizer, model) -> dict[str, float]:
    """Parameter name -> the lr of its group now."""
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    return {n: group_of[id(p)]["lr"] for n, p in model.named_parameters() if id(p) in group_of}


def test_the_defaults_make_the_one_group_of_every_parameter_that_older_checkpoints_hold():
    model = tiny("xlm-roberta")
    [group] = build_optimizer(optim(weight_decay=0.0), model, CPU).param_groups
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]
    assert (group["lr"], group["weight_decay"], group["fused"]) == (3e-3, 0.0, True)


@pytest.mark.parametrize("family", ["bert", "deberta-v2"])
def test_no_weight_decay_on_biases_and_norm_weights(family):
    model = tiny(family)
    optimizer = build_optimizer(optim(weight_decay=0.01), model, CPU)
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(decay[id(m.weight)] == 0.0 for m in norms)
    for name, p in model.named_parameters():
        exempt = name.endswith("bias") or any(p is m.weight for m in norms)
        assert decay[id(p)] == (0.0 if exempt else 0.01), name
    assert "classifier.weight" not in no_decay(model)


def test_a_models_own_norm_class_is_found_by_its_type():
    class T5LayerNorm(torch.nn.Module):  # not a torch.nn.LayerNorm, no "norm" in its name here
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(4))

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), T5LayerNorm())
    assert no_decay(model) == {"0.bias", "1.scale"}


@pytest.mark.parametrize("family", ["bert", "electra", "deberta-v2"])
def test_layer_decay_gives_each_layer_its_lr_and_the_head_head_lr(family):
    """Layer l of L=3 at lr * 0.5^(3-l), the embeddings (and what else of the encoder is outside
    its layers) at lr * 0.5^3, the head at head_lr; at step 2 of warm-up 4 each is halved."""
    model = tiny(family)
    cfg = optim(layer_decay=0.5, head_lr=1e-2, warmup_steps=4)
    optimizer = build_optimizer(cfg, model, CPU)
    schedule = build_schedule(optimizer, cfg, total_steps=10)
    for _ in range(2):
        optimizer.step()
        schedule.step()
    lr = lr_of(optimizer, model)
    assert len(lr) == len(list(model.parameters()))
    prefix = model.base_model_prefix
    for name, value in lr.items():
        if not name.startswith(f"{prefix}."):
            want = 1e-2  # the head
        elif ".layer." in name:
            layer = int(name.split(".layer.")[1].split(".")[0]) + 1
            want = 3e-3 * 0.5 ** (3 - layer)
        else:
            want = 3e-3 * 0.5**3
        assert value == pytest.approx(want * 2 / 4, rel=1e-12), name
    outside = [n for n, d in depths(model, "k").items() if d == 0 and ".embeddings." not in n]
    expected = {
        "bert": [],
        "electra": ["electra.embeddings_project.weight", "electra.embeddings_project.bias"],
        "deberta-v2": ["deberta.encoder.rel_embeddings.weight"],
    }
    assert outside == expected[family]
    # The log's learning rate is lr's (the top layer's), whatever group comes first.
    assert logged_lr(schedule, 3e-3) == pytest.approx(3e-3 * 2 / 4, rel=1e-12)


def test_an_extended_schedule_replans_every_group_from_its_own_peak():
    """A run of 10 steps saved at step 6 and resumed for 20 (ner/train.py: the state is built
    for the new total, the checkpoint loaded into it, then `follow`)."""
    model = tiny("bert")
    cfg = optim(layer_decay=0.5, head_lr=1e-2)
    optimizer = build_optimizer(cfg, model, CPU)
    schedule = build_schedule(optimizer, cfg, total_steps=10)
    for _ in range(6):
        optimizer.step()
        schedule.step()
    saved = optimizer.state_dict(), schedule.state_dict()
    optimizer = build_optimizer(cfg, model, CPU)
    schedule = build_schedule(optimizer, cfg, total_steps=20)
    optimizer.load_state_dict(saved[0])
    schedule.load_state_dict(saved[1])
    plan = [[0, 10]]
    extend_schedule(plan, schedule, step=6, total_steps=20, name="linear")
    assert plan == [[0, 10], [6, 20]] and len(optimizer.param_groups) == 5
    for group, peak in zip(optimizer.param_groups, schedule.base_lrs, strict=True):
        assert group["lr"] == pytest.approx(peak * 14 / 20, rel=1e-12)
    assert sorted(schedule.base_lrs) == pytest.approx(
        [3e-3 * 0.5**3, 3e-3 * 0.5**2, 3e-3 * 0.5, 3e-3, 1e-2], rel=1e-12
    )


def test_a_family_whose_layers_cannot_be_found_is_refused_in_one_line():
    """ALBERT shares one layer group across its depth: no list of its num_hidden_layers layers."""
    config = transformers.AlbertConfig(embedding_size=8, **SHAPE)
    model = AutoModelForTokenClassification.from_config(config)
    with pytest.raises(UserError) as e:
        build_optimizer(optim(layer_decay=0.9), model, CPU)
    assert str(e.value) == (
        "config: optim.layer_decay: cannot find the encoder layers of this Albert model "
        "(0 lists of its 3 layers under its base model); leave optim.layer_decay at its "
        "default for it"
    )
    build_optimizer(optim(), model, CPU)  # without layer decay it trains as before


def test_frozen_parameters_get_no_gradient_and_no_optimizer_state():
    model = tiny("deberta-v2")
    freeze(model, SimpleNamespace(freeze_embeddings=True, freeze_layers=2))
    optimizer = build_optimizer(optim(weight_decay=0.01), model, CPU)
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    place = depths(model, "k")
    for name, p in model.named_parameters():
        frozen = place[name] is not None and place[name] <= 2
        assert p.requires_grad is not frozen and (id(p) in in_optimizer) is not frozen, name
    ids = torch.randint(0, 50, (2, 5))
    model(input_ids=ids, labels=torch.zeros(2, 5, dtype=torch.long)).loss.backward()
    optimizer.step()
    assert all((p.grad is None) is (not p.requires_grad) for p in model.parameters())
    assert all(id(p) in in_optimizer for p in optimizer.state)


def test_freezing_more_layers_than_the_encoder_has_is_refused():
    with pytest.raises(UserError, match=r"model.freeze_layers=4 is more than the 3 layers"):
        freeze(tiny("bert"), SimpleNamespace(freeze_embeddings=False, freeze_layers=4))


def test_a_checkpoint_with_other_groups_is_refused_in_one_line():
    model = tiny("bert")
    old = torch.optim.AdamW(model.parameters(), weight_decay=0.01).state_dict()
    optimizer = build_optimizer(optim(weight_decay=0.01), model, CPU)
    with pytest.raises(UserError, match=r"^checkpoint last.pt: its optimizer holds parameter "):
        check_groups(optimizer, old, "last.pt")
    check_groups(optimizer, optimizer.state_dict(), "last.pt")


def test_a_run_saved_before_the_keys_existed_computes_and_evaluates_as_before():
    """A saved config without the new keys reads them as their defaults (resume compares with
    it; ner-evaluate builds the model from it): nothing differs, nothing is frozen."""
    from omegaconf import OmegaConf

    from ner.config import Config

    cfg = OmegaConf.structured(Config)
    saved = OmegaConf.to_container(cfg, resolve=True)
    for section, names in {
        "optim": ("head_lr", "layer_decay"),
        "model": ("freeze_embeddings", "freeze_layers"),
    }.items():
        for name in names:
            del saved[section][name]
    assert computed_differences(saved, cfg) == []
    read = saved_config(OmegaConf.to_yaml(OmegaConf.create(saved)))
    assert (read.optim.head_lr, read.optim.layer_decay) == (None, None)
    assert (read.model.freeze_embeddings, read.model.freeze_layers) == (False, 0)
    model = tiny("xlm-roberta")
    freeze(model, read.model)
    assert all(p.requires_grad for p in model.parameters())
    cfg.optim.layer_decay = 0.9
    assert computed_differences(saved, cfg) == ["optim.layer_decay: None -> 0.9"]
    defaults = (ModelConfig(), OptimConfig())
    assert (defaults[0].freeze_embeddings, defaults[0].freeze_layers) == (False, 0)
    assert (defaults[1].head_lr, defaults[1].layer_decay) == (None, None)


def test_the_card_lists_the_knobs_that_are_on_and_the_dashboard_every_one():
    from omegaconf import OmegaConf

    from ner.config import Config
    from ner.distributed import Env
    from ner.report.hparams import card_hyperparameters, dashboard_hyperparameters

    cfg = OmegaConf.structured(Config)
    card = card_hyperparameters(cfg, Env())
    assert not {"head_learning_rate", "layer_decay", "frozen"} & card.keys()
    dashboard = dashboard_hyperparameters(cfg, Env())
    assert (dashboard["head_lr"], dashboard["layer_decay"]) == (3e-3, 1.0)
    assert (dashboard["freeze_embeddings"], dashboard["freeze_layers"]) == (False, 0)
    cfg.optim.head_lr, cfg.optim.layer_decay, cfg.optim.weight_decay = 1e-2, 0.9, 0.01
    cfg.model.freeze_embeddings, cfg.model.freeze_layers = True, 1
    card = card_hyperparameters(cfg, Env())
    assert (card["head_learning_rate"], card["layer_decay"]) == (1e-2, 0.9)
    assert card["frozen"] == "embeddings and encoder layer 1"
    assert card["optimizer"].endswith(
        "decoupled weight decay 0.01 (not on biases and norm weights)"
    )
    dashboard = dashboard_hyperparameters(cfg, Env())
    assert (dashboard["head_lr"], dashboard["layer_decay"], dashboard["freeze_layers"]) == (
        1e-2,
        0.9,
        1,
    )


# Two epochs of 8 steps; the encoder's embeddings and layer 1 (of 2) frozen, the head at its
# own lr, layer 2 at lr; a checkpoint every 5 steps and at the end of each epoch.
FROZEN = [
    *QUICK,
    "data.max_train_samples=64",
    "data.max_eval_samples=21",
    "trainer.save_every_steps=5",
    "trainer.eval_test=false",
    "model.freeze_embeddings=true",
    "model.freeze_layers=1",
    "optim.head_lr=1e-2",
    "optim.layer_decay=0.5",
]


def test_frozen_weights_stay_byte_identical_and_a_resume_equals_the_run_never_stopped(
    tmp_path, capsys
):
    from ner.model import build_model, model_config
    from ner.tokenizer import load_tokenizer

    _, full = train_in_process(tmp_path / "full", FROZEN)
    assert "model: tiny XLM-R (random init), 0.09M parameters, 0.06M of them frozen" in (
        capsys.readouterr().out
    )
    last = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=True)
    cfg = compose(FROZEN)
    tokenizer = load_tokenizer(tmp_path / "full/tokenizer")
    start = build_model(cfg.model, model_config(cfg.model, last["labels"], tokenizer), cfg.seed)
    place = depths(start, "k")
    assert last["model"].keys() == start.state_dict().keys()  # frozen ones saved too
    for name, before in start.named_parameters():
        after = last["model"][name]
        if place[name] is not None and place[name] <= 1:
            assert (
                torch.equal(after, before) and after.numpy().tobytes() == before.numpy().tobytes()
            )
        else:
            assert not torch.equal(after, before), f"{name} trained"
    trainable = sum(1 for p in start.parameters() if p.requires_grad)  # the optimizer holds these
    card = (tmp_path / "full/README.md").read_text()
    for line in (
        "head_learning_rate: 0.01",
        "layer_decay: 0.5",
        "frozen: embeddings and encoder layer 1",
    ):
        assert f"\n- {line}\n" in card, line
    assert len(last["optimizer"]["state"]) == trainable < len(list(start.parameters()))

    train_in_process(tmp_path / "cut", [*FROZEN, "trainer.stop_after_steps=14"])
    cut = torch.load(tmp_path / "cut/checkpoints/last.pt", weights_only=True)
    assert (cut["progress"]["global_step"], cut["progress"]["step_in_epoch"]) == (10, 2)
    _, resumed = train_in_process(tmp_path / "cut", FROZEN)

    def numbers(history):
        return [
            {k: v for k, v in e.items() if "runtime" not in k and "per_second" not in k}
            for e in history
        ]

    assert numbers(resumed) == numbers(full)
    again = torch.load(tmp_path / "cut/checkpoints/last.pt", weights_only=True)["model"]
    for k, v in last["model"].items():
        assert torch.equal(again[k], v), k

"""The learning-rate curve and the entity metrics, without a model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import transformers
from conftest import compose
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

from ner.config import Schedule
from ner.distributed import Env
from ner.errors import UserError
from ner.metrics import entity_metrics
from ner.optimization import SCHEDULES, build_schedule, extend_schedule, segment
from ner.report.hparams import card_hyperparameters, dashboard_hyperparameters, recipe_summary
from ner.run.checks import check, check_schedule


def optim(schedule="linear", warmup_steps=0, warmup_ratio=None):
    return SimpleNamespace(schedule=schedule, warmup_steps=warmup_steps, warmup_ratio=warmup_ratio)


def lr_curve(warmup: int, total: int):
    """The multiplier of the peak learning rate after `step` updates, as the loop schedules it."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    return build_schedule(opt, optim(warmup_steps=warmup), total).lr_lambdas[0]


def test_linear_schedule_warms_up_then_decays_to_zero():
    f = lr_curve(10, 100)
    assert [f(s) for s in (0, 5, 10, 55, 100, 120)] == pytest.approx([0, 0.5, 1, 0.5, 0, 0])


def test_no_warmup_starts_at_peak_ends_at_zero():
    f = lr_curve(0, 6667)
    assert f(0) == 1.0 and f(6667) == 0.0 and f(7000) == 0.0


# transformers' own schedule functions, by optim.schedule's names, with the arguments each takes.
TRANSFORMERS = {
    "linear": lambda o, w, t: transformers.get_linear_schedule_with_warmup(o, w, t),
    "cosine": lambda o, w, t: transformers.get_cosine_schedule_with_warmup(o, w, t),
    "cosine_with_restarts": (
        lambda o, w, t: transformers.get_cosine_with_hard_restarts_schedule_with_warmup(o, w, t)
    ),
    "polynomial": lambda o, w, t: transformers.get_polynomial_decay_schedule_with_warmup(o, w, t),
    "constant": lambda o, w, t: transformers.get_constant_schedule(o),
    "constant_with_warmup": lambda o, w, t: transformers.get_constant_schedule_with_warmup(o, w),
    "inverse_sqrt": lambda o, w, t: transformers.get_inverse_sqrt_schedule(o, w),
}


def learning_rates(make_schedule, steps: int, peak: float = 3e-3) -> list[float]:
    """The learning rate of each of `steps` optimizer steps, stepping a real optimizer."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    scheduler = make_schedule(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return out


def test_every_schedule_is_named_in_the_config_and_in_words():
    assert {str(s) for s in Schedule} == set(SCHEDULES) == set(TRANSFORMERS)


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_each_schedule_gives_transformers_learning_rates(name):
    total, warmup = 50, 8
    ours = learning_rates(lambda o: build_schedule(o, optim(name, warmup), total), total + 3)
    theirs = learning_rates(lambda o: TRANSFORMERS[name](o, warmup, total), total + 3)
    assert ours == theirs
    if name == "cosine":  # by hand: the peak after the warm-up, half of it half-way through decay
        assert ours[8] == pytest.approx(3e-3) and ours[29] == pytest.approx(1.5e-3)
        assert ours[4] == pytest.approx(1.5e-3) and ours[50] == pytest.approx(0)
    if name == "constant":  # no warm-up
        assert set(ours) == {3e-3}


def test_warmup_ratio_is_a_share_of_the_steps_rounded_up():
    total = 95  # 0.1 of 95 steps: 10 steps of warm-up, as the Trainer counts them
    ours = learning_rates(lambda o: build_schedule(o, optim("cosine", 0, 0.1), total), total)
    theirs = learning_rates(lambda o: TRANSFORMERS["cosine"](o, 10, total), total)
    assert ours == theirs


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_an_extended_run_follows_the_new_plan_exactly(name):
    """A run of 40 steps, resumed (its scheduler state restored) and extended to 70: from step 40
    on, the learning rates of a run planned for 70 steps from the start."""
    cfg = optim(name, 0, 0.1)  # the new plan warms up over 7 steps, the old one over 4
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=3e-3)
    old = build_schedule(opt, cfg, 40)
    for _ in range(40):
        opt.step()
        old.step()
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=3e-3)
    opt.load_state_dict(old.optimizer.state_dict())
    new = build_schedule(opt, cfg, 70)
    new.load_state_dict(old.state_dict())
    plan = [[0, 40]]
    line = extend_schedule(plan, new, 40, 70, name)
    assert line == f"steps after 40 follow the {name} schedule planned for 70 steps"
    assert plan == [[0, 40], [40, 70]]
    extended = []
    for _ in range(30):
        extended.append(opt.param_groups[0]["lr"])
        opt.step()
        new.step()
    fresh = learning_rates(lambda o: build_schedule(o, cfg, 70), 70)
    assert extended == fresh[40:]


def test_the_card_names_the_schedule_that_ran():
    assert segment("linear", 1, 60, 60) == "steps 1-60 decay linearly to 0 at step 60"
    assert segment("cosine", 61, 90, 90) == "steps 61-90 follow a cosine decay to 0 at step 90"
    cfg = compose(["experiment=demo", "optim.schedule=cosine", "optim.warmup_ratio=0.1"])
    card = card_hyperparameters(cfg, Env(), [[0, 60], [60, 90]])
    assert card["lr_scheduler_type"] == "cosine" and card["lr_scheduler_warmup_ratio"] == 0.1
    assert "lr_scheduler_warmup_steps" not in card  # replaced by the ratio
    assert list(card)[list(card).index("lr_scheduler_warmup_ratio") + 1] == "lr_scheduler_segments"
    assert card["lr_scheduler_segments"] == (
        "steps 1-60 follow a cosine decay to 0 at step 60; steps 61-90 follow a cosine decay to 0 "
        "at step 90"
    )
    dashboard = dashboard_hyperparameters(cfg, Env())
    assert dashboard["schedule"] == "cosine" and dashboard["warmup_ratio"] == 0.1


def test_warmup_ratio_replaces_the_recipe_warmup_and_refuses_a_warmup_given_beside_it():
    cfg = compose(["experiment=demo", "optim.warmup_ratio=0.1"])  # the tiny recipe's warm-up 20
    check(cfg)
    check_schedule(cfg, 100)  # 10 steps of warm-up: fits
    assert "optim.warmup_ratio=0.1 replaces optim.warmup_steps" in recipe_summary(cfg)
    check(
        compose(["experiment=demo", "debug=quick", "optim.warmup_ratio=0.1"])
    )  # its 0: no warm-up
    with pytest.raises(UserError) as e:
        check(compose(["experiment=demo", "optim.warmup_ratio=0.1", "optim.warmup_steps=5"]))
    assert str(e.value) == (
        "config: optim.warmup_ratio=0.1 and optim.warmup_steps=5 both set the warm-up; give one"
    )
    with pytest.raises(UserError, match=r"optim.warmup_ratio=0.9 \(9 steps\) is not shorter"):
        check_schedule(compose(["experiment=demo", "optim.warmup_ratio=0.9"]), 9)


GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "O", "B-LOC", "I-LOC"], ["O"]]
PRED = [["B-PER", "I-PER", "O", "O"], ["O", "I-ORG", "I-ORG", "O", "B-LOC", "B-LOC"], ["B-PER"]]


def test_metrics_equal_seqeval():
    m = entity_metrics(GOLD, PRED)
    assert m["precision"] == pytest.approx(precision_score(GOLD, PRED))
    assert m["recall"] == pytest.approx(recall_score(GOLD, PRED))
    assert m["f1"] == pytest.approx(f1_score(GOLD, PRED))
    assert m["accuracy"] == pytest.approx(accuracy_score(GOLD, PRED))
    # by hand: gold entities PER, LOC, ORG, LOC; predicted PER, ORG (I- after O starts one), LOC, LOC, PER
    assert m["precision"] == pytest.approx(2 / 5) and m["recall"] == pytest.approx(2 / 4)
    assert m["per_type"]["PER"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "support": 1,
    }
    assert m["per_type"]["LOC"]["support"] == 2


def test_metrics_refuse_misaligned_predictions():
    with pytest.raises(AssertionError, match="sentence 0"):
        entity_metrics([["O", "O"]], [["O"]])

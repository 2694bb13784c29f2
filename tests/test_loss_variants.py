"""The training loss's variants (optim.label_smoothing, optim.class_weights) against a hand
computation, without a model; and their normaliser, which makes N ranks at batch B equal one
rank at N x B."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from conftest import compose

from ner.distributed import Env
from ner.errors import UserError
from ner.features import IGNORE
from ner.loss import PLAIN, Objective, objective, step_tokens, token_loss
from ner.report.hparams import card_hyperparameters, dashboard_hyperparameters
from ner.run.checks import check

LABELS = ["O", "B-PER", "I-PER"]


def batch(seed: int = 0, n: int = 7):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, len(LABELS), generator=g, dtype=torch.float64)
    labels = torch.randint(0, len(LABELS), (n,), generator=g)
    labels[1] = IGNORE  # a sub-token after a word's first, say
    return logits, labels


def by_hand(logits, labels, smoothing=0.0, weights=(1.0, 1.0, 1.0)):
    """Sum over labelled tokens of (1 - e) w_y (-log p_y) + e/L sum_c w_c (-log p_c), and the sum
    of the labelled tokens' w_y (the normaliser)."""
    total, norm = 0.0, 0.0
    for row, y in zip(logits.tolist(), labels.tolist(), strict=True):
        if y == IGNORE:
            continue
        z = max(row)
        log_sum = z + torch.tensor([r - z for r in row], dtype=torch.float64).exp().sum().log()
        nll = [float(log_sum) - r for r in row]
        spread = sum(w * x for w, x in zip(weights, nll, strict=True)) / len(row)
        total += (1 - smoothing) * weights[y] * nll[y] + smoothing * spread
        norm += weights[y]
    return total, norm


def test_the_plain_loss_is_the_summed_cross_entropy():
    logits, labels = batch()
    assert float(token_loss(logits, labels)) == pytest.approx(by_hand(logits, labels)[0], 1e-12)


def test_the_smoothed_loss_against_a_hand_computation():
    logits, labels = batch()
    ours = float(token_loss(logits, labels, Objective(label_smoothing=0.1)))
    assert ours == pytest.approx(by_hand(logits, labels, 0.1)[0], rel=1e-12)
    assert ours != pytest.approx(float(token_loss(logits, labels)))


def test_the_weighted_loss_and_its_normaliser_against_a_hand_computation():
    logits, labels = batch()
    w = (0.5, 2.0, 3.0)
    o = Objective(0.1, torch.tensor(w, dtype=torch.float64))
    total, norm = by_hand(logits, labels, 0.1, w)
    assert float(token_loss(logits, labels, o)) == pytest.approx(total, rel=1e-12)
    n = step_tokens([{"labels": labels[None]}], Env(), o.weights)
    assert float(n) == pytest.approx(norm, rel=1e-12)
    # torch's weighted mean divides by the same sum
    mean = F.cross_entropy(logits, labels, o.weights, ignore_index=IGNORE, label_smoothing=0.1)
    assert float(token_loss(logits, labels, o) / n) == pytest.approx(float(mean), rel=1e-12)


def test_a_step_split_into_micro_batches_or_ranks_has_the_loss_of_the_whole():
    """Loss sums add and the normaliser is the step's total, so halves (two micro-batches, or two
    ranks, whose normaliser all_reduce sums) update as the whole batch does."""
    (la, ya), (lb, yb) = batch(1), batch(2)
    o = Objective(0.2, torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64))
    halves = [{"labels": ya[None]}, {"labels": yb[None]}]
    whole = [{"labels": torch.cat([ya, yb])[None]}]
    split = (token_loss(la, ya, o) + token_loss(lb, yb, o)) / step_tokens(halves, Env(), o.weights)
    one = token_loss(torch.cat([la, lb]), torch.cat([ya, yb]), o) / step_tokens(
        whole, Env(), o.weights
    )
    assert float(split) == pytest.approx(float(one), rel=1e-12)
    assert int(step_tokens(halves, Env())) == 12  # unweighted: the labelled tokens, as before


def optim(class_weights=None, label_smoothing=0.0):
    return SimpleNamespace(class_weights=class_weights, label_smoothing=label_smoothing)


TRAIN = [{"labels": [IGNORE, 0, 0, 1, IGNORE]}, {"labels": [IGNORE, 0, 2, 0, 1, IGNORE]}]


def test_inverse_frequency_weights_from_the_training_labels():
    o = objective(optim("inverse_frequency", 0.1), LABELS, TRAIN, "cpu")
    # counts O 4, B-PER 2, I-PER 1 of 7: n / (L * n_l)
    assert o.weights.tolist() == pytest.approx([7 / 12, 7 / 6, 7 / 3])
    assert o.label_smoothing == 0.1 and objective(optim(), LABELS, TRAIN, "cpu") == PLAIN
    with pytest.raises(UserError, match="label I-PER is not in the training data"):
        objective(optim("inverse_frequency"), LABELS, TRAIN[:1], "cpu")


def test_a_list_of_weights_is_one_per_label():
    assert objective(optim([1, 2, 3]), LABELS, TRAIN, "cpu").weights.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(UserError) as e:
        objective(optim([1, 2]), LABELS, TRAIN, "cpu")
    assert str(e.value) == (
        "config: optim.class_weights has 2 weights and the data 3 labels (O, B-PER, I-PER): give "
        "one per label, in that order"
    )


@pytest.mark.parametrize("bad", ["balanced", "[1,-1]", "[a,b]"])
def test_class_weights_that_cannot_work_are_refused_in_one_line(bad):
    with pytest.raises(UserError, match=r"^config: optim.class_weights=.* must be null, inverse"):
        check(compose(["experiment=demo", f"optim.class_weights={bad}"]))


def test_the_variants_on_the_card_and_the_dashboard():
    plain = compose(["experiment=demo"])
    check(plain)
    assert not {"label_smoothing_factor", "class_weights"} & set(card_hyperparameters(plain, Env()))
    cfg = compose(["experiment=demo", "optim.label_smoothing=0.1", "optim.class_weights=[1,2.5]"])
    check(cfg)
    card = card_hyperparameters(cfg, Env())
    assert card["label_smoothing_factor"] == 0.1 and card["class_weights"] == "[1, 2.5]"
    dashboard = dashboard_hyperparameters(cfg, Env())
    assert dashboard["label_smoothing"] == 0.1 and dashboard["class_weights"] == "[1, 2.5]"
    assert dashboard_hyperparameters(plain, Env())["label_smoothing"] == 0.0

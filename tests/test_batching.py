"""Batch plans: each example once per epoch, rank-count independent steps, deterministic."""

from __future__ import annotations

import pytest

from ner.batching import epoch_plan, eval_shard, steps_per_epoch


def flatten_step(step):
    return sorted(i for micro in step for rank in micro for i in rank)


@pytest.mark.parametrize("group", [False, True])
@pytest.mark.parametrize("world,accum", [(1, 1), (2, 1), (3, 2), (4, 3)])
def test_each_example_once_per_epoch(group, world, accum):
    lengths = [(i * 37) % 23 + 1 for i in range(101)]
    plan = epoch_plan(lengths, 4, world, accum, seed=3, epoch=1, group_by_length=group)
    seen = [i for step in plan for i in flatten_step(step)]
    assert sorted(seen) == list(range(101))
    assert len(plan) == steps_per_epoch(101, 4, world, accum)
    for step in plan:
        assert all(len(micro) == world for micro in step)
        assert all(len(rank) <= 4 for micro in step for rank in micro)


@pytest.mark.parametrize("group", [False, True])
def test_two_ranks_see_what_one_rank_with_double_batch_sees(group):
    lengths = [(i * 13) % 17 + 1 for i in range(57)]
    one = epoch_plan(lengths, 6, 1, 1, seed=42, epoch=0, group_by_length=group)
    two = epoch_plan(lengths, 3, 2, 1, seed=42, epoch=0, group_by_length=group)
    accum = epoch_plan(lengths, 3, 1, 2, seed=42, epoch=0, group_by_length=group)
    assert (
        [flatten_step(s) for s in one]
        == [flatten_step(s) for s in two]
        == [flatten_step(s) for s in accum]
    )


def test_epochs_differ_and_plan_is_deterministic():
    lengths = list(range(1, 50))
    a = epoch_plan(lengths, 4, 2, 1, seed=1, epoch=0, group_by_length=True)
    assert a == epoch_plan(lengths, 4, 2, 1, seed=1, epoch=0, group_by_length=True)
    assert a != epoch_plan(lengths, 4, 2, 1, seed=1, epoch=1, group_by_length=True)


def test_group_by_length_reduces_padding():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(5, 120) for _ in range(2000)]

    def padding(plan):
        return sum(
            max(lengths[i] for i in r) * len(r) - sum(lengths[i] for i in r)
            for s in plan
            for m in s
            for r in m
            if r
        )

    grouped = epoch_plan(lengths, 8, 1, 1, seed=0, epoch=0, group_by_length=True)
    plain = epoch_plan(lengths, 8, 1, 1, seed=0, epoch=0, group_by_length=False)
    assert padding(grouped) < padding(plain) / 5


def test_last_step_can_leave_a_rank_empty():
    plan = epoch_plan([1] * 5, 2, 2, 1, seed=0, epoch=0, group_by_length=False)
    assert [len(r) for r in plan[-1][0]] == [1, 0]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_eval_shards_cover_every_example_once(world):
    lengths = [(i * 7) % 11 for i in range(23)]
    shards = [i for r in range(world) for b in eval_shard(lengths, 4, r, world) for i in b]
    assert sorted(shards) == list(range(23))


def test_bucket_lengths_from_the_window_a_list_or_none():
    import torch

    from ner.batching import bucket_lengths

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    rule = bucket_lengths("window", 512, cpu)
    assert rule == (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
    assert all(b % 8 == 0 for b in rule) and all(
        b <= 1.5 * a for a, b in zip(rule, rule[1:], strict=False)
    )
    assert bucket_lengths("window", 130, cpu) == (16, 24, 32, 48, 64, 96, 128, 130)
    assert bucket_lengths("window", 12, cpu) == (12,)  # a window shorter than the first bucket
    assert bucket_lengths("auto", 512, cuda) == rule  # the graphs and compile want them
    assert bucket_lengths("auto", 512, cpu) == ()  # padding is time on the CPU
    assert bucket_lengths(None, 512, cuda) == bucket_lengths([], 512, cuda) == ()
    assert bucket_lengths([64, 32, 32, 1000], 128, cpu) == (32, 64, 128)  # the window is last


def test_collator_pads_to_the_bucket_and_fills_rows_masked():
    import torch

    from ner.batching import Collator
    from ner.features import IGNORE

    feats = [
        {"input_ids": [0, 5, 6, 2], "labels": [IGNORE, 1, 2, IGNORE]},
        {"input_ids": list(range(3, 20)), "labels": [0] * 17},  # 17 sub-tokens
    ]
    plain = Collator(pad_id=1)(feats, rows=5)
    assert plain["input_ids"].shape == (2, 17)  # no buckets: the longest, no filler rows
    collate = Collator(pad_id=1, pad_to_multiple_of=8, buckets=(16, 24, 32))
    assert [collate.width(n) for n in (1, 16, 17, 24, 25, 32, 33)] == [16, 16, 24, 24, 32, 32, 40]
    b = collate(feats, rows=4)
    assert b["input_ids"].shape == b["labels"].shape == b["attention_mask"].shape == (4, 24)
    assert b["attention_mask"][:2].sum(1).tolist() == [4, 17]
    assert (b["input_ids"][0, 4:] == 1).all() and (b["labels"][0, 4:] == IGNORE).all()
    assert (b["labels"][2:] == IGNORE).all() and (b["input_ids"][2:] == 1).all()
    assert b["attention_mask"][2:].tolist() == [[1] + [0] * 23] * 2  # one position: no NaN
    assert torch.equal(b["input_ids"][:2, :17], Collator(pad_id=1)(feats)["input_ids"][:, :17])


def test_epoch_steps_have_the_bucketed_shapes():
    from ner.batching import Collator, EpochSteps

    lengths = [(i * 7) % 40 + 3 for i in range(21)]
    feats = [{"input_ids": [5] * n, "labels": [0] * n} for n in lengths]
    plan = epoch_plan(lengths, 4, 1, 2, seed=0, epoch=0, group_by_length=False)
    steps = EpochSteps(feats, plan, 0, Collator(1, buckets=(16, 24, 32, 48)))
    shapes = {tuple(b["input_ids"].shape) for k in range(len(steps)) for b in steps[k]}
    assert {rows for rows, _ in shapes} == {4}  # the last, smaller micro-batch is filled too
    assert {width for _, width in shapes} <= {16, 24, 32, 48}
    labelled = sum(int((b["labels"] == 0).sum()) for k in range(len(steps)) for b in steps[k])
    assert labelled == sum(lengths)  # every position of every example once, nothing more


@pytest.mark.slow
def test_bucketed_training_and_evaluation_equal_the_plain_path(tmp_path, monkeypatch):
    # Masked padding and filler rows change no number beyond float rounding (dropout off: with it
    # the masks are drawn over the padded shape). Random batches and an evaluation batch of 7
    # (61 sentences: a last batch of 5) give several buckets and filler rows.
    from conftest import QUICK, train_in_process

    from ner.batching import Collator

    shapes = []  # of every batch the loop collates, training and evaluation
    collate = Collator.__call__

    def recording(self, *args, **kwargs):
        batch = collate(self, *args, **kwargs)
        shapes.append(tuple(batch["labels"].shape))
        return batch

    monkeypatch.setattr(Collator, "__call__", recording)
    common = [*QUICK, "model.dropout=0", "trainer.group_by_length=false", "data.cache_dir=null"]
    _, plain = train_in_process(tmp_path / "plain", [*common, "trainer.length_buckets=null"])
    plain_shapes, shapes[:] = set(shapes), []
    _, bucketed = train_in_process(
        tmp_path / "bucketed", [*common, "trainer.length_buckets=window"]
    )
    assert {width for _, width in shapes} <= {16, 24, 32, 48, 64, 96, 128}  # the demo's window 128
    assert {rows for rows, _ in shapes} == {7, 8}  # eval batch 7, batch 8: every batch filled
    assert len(set(shapes)) < len(plain_shapes)  # what the buckets are for

    def numbers(entry: dict) -> dict:
        timing = ("runtime", "per_second")
        return {
            k: v
            for k, v in entry.items()
            if isinstance(v, float) and not any(t in k for t in timing)
        }

    assert len(plain) == len(bucketed) and len([e for e in plain if "loss" in e]) >= 10
    for p, b in zip(plain, bucketed, strict=True):
        assert p.keys() == b.keys()
        assert numbers(p) == pytest.approx(numbers(b), rel=1e-6, abs=1e-6), p
        assert {k: v for k, v in p.items() if not isinstance(v, float)} == {
            k: v for k, v in b.items() if not isinstance(v, float)
        }
    f1 = [e["eval_f1"] for e in plain if "eval_f1" in e]
    assert len(f1) == 2 and 0 < f1[-1] < 1  # scores that can differ: some entities found


@pytest.mark.parametrize("value", ["fast", "[0,64]", "[16.5]", "true"])
def test_a_bad_length_buckets_value_is_refused_in_one_line(value):
    from conftest import compose

    from ner.errors import UserError
    from ner.run.checks import check

    with pytest.raises(UserError, match=r"^config: trainer.length_buckets=.* must be auto, window"):
        check(compose([f"trainer.length_buckets={value}"]))
    for good in ("auto", "window", "null", "[]", "[32,64]"):
        check(compose([f"trainer.length_buckets={good}"]))

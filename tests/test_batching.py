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

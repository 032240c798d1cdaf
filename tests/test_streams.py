"""Every random stream comes from (seed, purpose, index) through one helper, so no two seeds,
epochs or purposes share draws (seed 1's epoch 0 was once seed 0's epoch 1)."""

from __future__ import annotations

import itertools

import pytest
import torch

from prunelab.data import BatchLoader
from prunelab.nets import fresh_weights, seeded_mlp
from prunelab.streams import PURPOSES, seed_for

pytestmark = pytest.mark.reliability


def test_no_two_seed_epoch_pairs_share_a_batch_order():
    n = 50_000
    x, y = torch.zeros(n, 1), torch.zeros(n, dtype=torch.long)
    loader = BatchLoader(x, y, batch_size=512, shuffle=True)
    orders = {}
    for seed, epoch in itertools.product(range(10), range(100)):
        loader.set_epoch(epoch)
        orders[(seed, epoch)] = tuple(loader.order(seed)[:16].tolist())
    assert len(set(orders.values())) == len(orders) == 1000
    assert orders[(1, 0)] != orders[(0, 1)], "the old seed + epoch collision"


def test_every_purpose_of_every_seed_is_its_own_stream():
    seeds = [seed_for(s, p, *i) for s in range(10) for p in PURPOSES for i in ((), (0,), (1,))]
    assert len(set(seeds)) == len(seeds)


def test_the_init_and_the_reinit_control_draw_different_weights_for_every_seed():
    sizes = [20, 8, 4]
    for seed in range(3):
        init = [layer.weight for layer in seeded_mlp(sizes, seed).layers]
        again = [layer.weight for layer in seeded_mlp(sizes, seed).layers]
        fresh = fresh_weights(sizes, [seed], torch.device("cpu"), torch.float32)
        assert all(torch.equal(a, b) for a, b in zip(init, again, strict=True)), "reproducible"
        assert not any(torch.equal(a, f[0]) for a, f in zip(init, fresh, strict=True))
    assert not torch.equal(
        seeded_mlp(sizes, 0).layers[0].weight, seeded_mlp(sizes, 1).layers[0].weight
    )


def test_drawing_a_network_leaves_the_process_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    seeded_mlp([10, 5, 2], 7)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(("seed", "purpose"), [(-1, "init"), (0, "shuffle")])
def test_a_stream_outside_the_known_ones_is_a_bug_not_a_seed(seed, purpose):
    with pytest.raises(ValueError):
        seed_for(seed, purpose)

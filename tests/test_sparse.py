"""Compaction: a smaller dense MLP with exactly the surviving units and the same logits."""

from __future__ import annotations

import pytest
import torch

from prunelab.model import MaskedMLP
from prunelab.pruning import alive_units
from prunelab.sparse import compact

SIZES = [784, 1000, 1000, 500, 200, 10]


@pytest.fixture(scope="module")
def trained_like() -> MaskedMLP:
    torch.manual_seed(0)
    return MaskedMLP(SIZES)


@pytest.mark.parametrize("strategy", ["weight", "neuron"])
@pytest.mark.parametrize("k", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("batch", [1, 64])
def test_compact_model_gives_the_masked_models_logits(trained_like, strategy, k, batch):
    net = MaskedMLP(SIZES)
    net.load_state_dict(trained_like.state_dict())
    net.prune(strategy, k)
    small = compact(net)
    x = torch.randn(batch, 784)
    with torch.no_grad():
        assert torch.allclose(small(x), net(x), atol=1e-5, rtol=1e-5)


def test_compact_keeps_exactly_the_surviving_units(trained_like):
    net = MaskedMLP(SIZES)
    net.load_state_dict(trained_like.state_dict())
    net.prune("neuron", 0.9)
    small = compact(net)
    assert small.sizes == [784, 100, 100, 50, 20, 10]
    alive = alive_units(net.masks())
    kept_rows = net.layers[1].weight[alive[1]][:, alive[0]]
    assert torch.equal(small.layers[1].weight, kept_rows)


def test_compacting_an_unpruned_model_changes_nothing(trained_like):
    small = compact(trained_like)
    assert small.sizes == SIZES
    for a, b in zip(small.layers, trained_like.layers, strict=True):
        assert torch.equal(a.weight, b.weight) and bool(a.mask.all())


def test_a_layer_with_no_live_unit_gives_constant_zero_logits():
    net = MaskedMLP([6, 4, 3, 2])
    net.layers[1].set_mask(torch.zeros(3, 4, dtype=torch.bool))
    small = compact(net)
    x = torch.randn(5, 6)
    assert torch.equal(small(x), torch.zeros(5, 2)) and torch.equal(net(x), small(x))

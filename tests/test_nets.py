"""The nets: the seed's formula, masks that block gradients, and a stack of one that is the
plain model bit for bit (so a single run's numbers do not depend on stacking)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from prunelab.config import strategy_method
from prunelab.functional import member_losses
from prunelab.nets import MaskedMLP, StackedMLP

SMALL = [784, 64, 48, 32, 10]


def test_forward_is_the_seed_formula_relu_x_w():
    torch.manual_seed(0)
    net = MaskedMLP(SMALL)
    net.prune(strategy_method("weight"), 0.5)
    x = torch.randn(5, 784)
    h = x
    for layer in net.layers[:-1]:
        h = F.relu(h @ (layer.weight * layer.mask).T)
    expected = h @ net.layers[-1].weight.T
    assert torch.allclose(net(x), expected, atol=1e-6)
    assert all(layer.bias is None for layer in net.layers)


def test_pruned_weights_get_zero_gradient():
    torch.manual_seed(0)
    net = MaskedMLP(SMALL)
    net.prune(strategy_method("neuron"), 0.5)
    net(torch.randn(8, 784)).sum().backward()
    for layer in net.layers:
        assert int((layer.weight.grad[~layer.mask] != 0).sum()) == 0


def test_a_stack_of_one_trains_bit_for_bit_like_the_plain_model():
    torch.manual_seed(0)
    plain = MaskedMLP(SMALL)
    plain.prune(strategy_method("neuron"), 0.3)
    stack = StackedMLP([plain])
    opts = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in (plain, stack)]
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        x, y = torch.randn(32, 784, generator=gen), torch.randint(0, 10, (32,), generator=gen)
        losses = [F.cross_entropy(plain(x), y), member_losses(stack(x), y).sum()]
        for opt, loss in zip(opts, losses, strict=True):
            opt.zero_grad()
            loss.backward()
            opt.step()
        torch.testing.assert_close(losses[0], losses[1], rtol=1e-6, atol=0)  # sum order
    for a, b in zip(plain.layers, stack.layers, strict=True):
        assert torch.equal(a.weight, b.weight[0]), "same bits after 20 Adam steps"


def test_a_stack_runs_each_member_as_its_own_model():
    torch.manual_seed(0)
    nets = [MaskedMLP([6, 5, 3]) for _ in range(3)]
    nets[1].prune(strategy_method("neuron"), 0.4)
    stack = StackedMLP(nets)
    x = torch.randn(4, 6)
    torch.testing.assert_close(stack(x), torch.stack([n(x) for n in nets]))
    xs = torch.randn(3, 4, 6)  # one batch per member
    torch.testing.assert_close(
        stack(xs), torch.stack([n(xi) for n, xi in zip(nets, xs, strict=True)])
    )


def test_pruning_one_member_leaves_the_others_untouched():
    torch.manual_seed(0)
    nets = [MaskedMLP([6, 5, 3]) for _ in range(3)]
    stack = StackedMLP(nets)
    before = [layer.weight.detach().clone() for layer in stack.layers]
    stack.prune([2], strategy_method("weight"), [0.5])
    assert stack.sparsity([0, 0, 0.5])[2]["sparsity/layer1"] == pytest.approx(0.5, abs=0.04)
    for layer, w in zip(stack.layers, before, strict=True):
        assert layer.mask[:2].all() and torch.equal(layer.weight[:2], w[:2])
    alone = MaskedMLP([6, 5, 3])
    alone.load_state_dict(nets[2].state_dict())
    alone.prune(strategy_method("weight"), 0.5)
    one = stack.unstack(2)
    for a, b in zip(alone.layers, one.layers, strict=True):
        assert torch.equal(a.mask, b.mask) and torch.equal(a.weight, b.weight)
    stack.prune([0], strategy_method("weight"), [0.5])
    stack.release([2])  # lifts member 2's masks only: member 0 stays pruned
    assert all(bool(layer.mask[1:].all()) for layer in stack.layers)
    assert not bool(stack.layers[0].mask[0].all())


@pytest.mark.parametrize("strategy", ["weight", "neuron", "random_weight", "global_weight"])
def test_one_batched_prune_of_a_stack_gives_each_member_its_own_masks(strategy):
    # The vectorised selection over the member axis: member i at its own k and seed gets
    # exactly the masks it gets pruned alone, ties included (rounded weights tie often).
    torch.manual_seed(0)
    nets = [MaskedMLP([20, 12, 8, 3]) for _ in range(4)]
    for net in nets:
        for layer in net.layers:
            layer.weight.data = (layer.weight.data * 8).round() / 8
    ks, seeds = [0.0, 0.3, 0.5, 0.9], [0, 1, 2, 3]
    stack = StackedMLP(nets)
    stack.prune(range(4), strategy_method(strategy), ks, seeds=seeds)
    for i, (net, k, seed) in enumerate(zip(nets, ks, seeds, strict=True)):
        net.prune(strategy_method(strategy), k, seed=seed)
        for a, b in zip(net.layers, stack.unstack(i).layers, strict=True):
            assert torch.equal(a.mask, b.mask) and torch.equal(a.weight, b.weight)
    figures = stack.sparsity(ks)
    assert [f["sparsity/nominal"] for f in figures] == ks
    assert figures == [net.sparsity(k) for net, k in zip(nets, ks, strict=True)]


def test_unstack_keeps_device_and_dtype():
    stack = StackedMLP([MaskedMLP([6, 5, 3]) for _ in range(2)]).double()
    one = stack.unstack(1)
    assert one.layers[0].weight.dtype == torch.float64
    assert one.layers[0].mask.dtype == torch.bool
    assert torch.equal(one.layers[0].weight, stack.layers[0].weight[1])


def _zero_grad_where_pruned(net: StackedMLP, x: torch.Tensor) -> bool:
    net.zero_grad(set_to_none=True)
    net(x).sum().backward()
    return all(int((layer.weight.grad[~layer.mask] != 0).sum()) == 0 for layer in net.layers)


def _skips(net: StackedMLP) -> list[bool]:
    return [layer.full.holds(layer.mask) for layer in net.layers]


def test_a_full_mask_is_skipped_once_checked_and_every_kind_of_mask_write_is_seen():
    """A layer whose mask keeps everything uses its weight as is (same bits, one pass less)
    once ``refresh_full_masks`` has checked it; each way a run writes masks (a prune's copy_,
    an indexed write, load_state_dict, a release's fill_) makes the next forward apply the
    new mask, refreshed or not; the forward itself never reads a mask on the host."""
    torch.manual_seed(0)
    net = StackedMLP([MaskedMLP(SMALL) for _ in range(2)])
    x = torch.randn(8, 784)
    dense = net(x)
    assert _skips(net) == [False] * 4, "unchecked: the product is made"
    net.refresh_full_masks()
    assert _skips(net) == [True] * 4 and torch.equal(net(x), dense), "skipped: same bits"
    net.layers[0].mask[0, :, :400] = False  # an indexed write, not yet refreshed
    assert _skips(net) == [False, True, True, True]
    assert not torch.equal(net(x)[0], dense[0]) and torch.equal(net(x)[1], dense[1])
    net.layers[0].mask[0, :, :400] = True
    net.refresh_full_masks()
    assert _skips(net) == [True] * 4 and torch.equal(net(x), dense)
    net.prune([0, 1], strategy_method("weight"), [0.5, 0.5])  # copy_ into the masks
    assert _zero_grad_where_pruned(net, x)
    net.refresh_full_masks()
    assert _skips(net) == [False, False, False, True], "the output layer is not pruned"
    net.release([0, 1])  # every mask full again: gradients reach every weight
    net.refresh_full_masks()
    assert _skips(net) == [True] * 4
    net.layers[1].mask[1, :, :5] = False  # an indexed write
    assert _zero_grad_where_pruned(net, x)
    net.refresh_full_masks()
    pruned = StackedMLP([MaskedMLP(SMALL) for _ in range(2)])
    pruned.prune([0, 1], strategy_method("neuron"), [0.5, 0.5])
    net.load_state_dict(pruned.state_dict())  # masks from a checkpoint
    assert _skips(net)[:3] == [False] * 3 and _zero_grad_where_pruned(net, x)
    assert torch.equal(net(x), pruned(x))

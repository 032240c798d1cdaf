"""Mask functions: exact counts, agreement with torch.nn.utils.prune, ties, accounting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.utils.prune as tprune
from torch import nn

from prunelab.config import check_argv, strategy_method
from prunelab.criteria import CRITERIA
from prunelab.errors import ConfigError
from prunelab.nets import MaskedMLP
from prunelab.pruning import (
    alive_units,
    kth_smallest_rows,
    smallest_mask,
    smallest_masks,
    sparsity_report,
)
from prunelab.selection import compute_masks

K_GRID = [0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]
SIZES = [784, 1000, 1000, 500, 200, 10]


@pytest.fixture(scope="module")
def net() -> MaskedMLP:
    torch.manual_seed(0)
    return MaskedMLP(SIZES)


@pytest.mark.parametrize("k", K_GRID)
def test_weight_pruning_removes_exactly_round_k_n_entries_per_hidden_layer(net, k):
    model = MaskedMLP(SIZES)
    model.load_state_dict(net.state_dict())
    model.prune(strategy_method("weight"), k)
    for layer in model.layers[:-1]:
        assert int((~layer.mask).sum()) == round(k * layer.weight.numel())
        assert int((layer.weight[~layer.mask] != 0).sum()) == 0
    assert bool(model.layers[-1].mask.all())


@pytest.mark.parametrize("k", K_GRID)
def test_neuron_pruning_removes_exactly_round_k_units_per_hidden_layer(net, k):
    model = MaskedMLP(SIZES)
    model.load_state_dict(net.state_dict())
    model.prune(strategy_method("neuron"), k)
    for layer in model.layers[:-1]:
        rows_gone = (~layer.mask).all(dim=1)
        rows_kept = layer.mask.all(dim=1)
        assert bool((rows_gone | rows_kept).all()), "a unit is removed whole or kept whole"
        assert int(rows_gone.sum()) == round(k * layer.weight.shape[0])
    assert bool(model.layers[-1].mask.all())


def test_output_layer_pruned_only_when_asked(net):
    model = MaskedMLP(SIZES)
    model.load_state_dict(net.state_dict())
    model.prune(strategy_method("weight"), 0.5, prune_output=True)
    assert int((~model.layers[-1].mask).sum()) == round(0.5 * 200 * 10)


@pytest.mark.parametrize("k", K_GRID)
def test_weight_masks_equal_torch_l1_unstructured(net, k):
    weights = [layer.weight for layer in net.layers[:-1]]
    ours = compute_masks(strategy_method("weight"), weights, k)
    for w, mask in zip(weights, ours, strict=True):
        ref = nn.Linear(w.shape[1], w.shape[0], bias=False)
        ref.weight.data.copy_(w.data)
        tprune.l1_unstructured(ref, "weight", amount=k)
        assert torch.equal(mask, ref.weight_mask.bool())


@pytest.mark.parametrize("k", K_GRID)
def test_neuron_masks_equal_torch_ln_structured_dim0(net, k):
    weights = [layer.weight for layer in net.layers[:-1]]
    ours = compute_masks(strategy_method("neuron"), weights, k)
    for w, mask in zip(weights, ours, strict=True):
        ref = nn.Linear(w.shape[1], w.shape[0], bias=False)
        ref.weight.data.copy_(w.data)
        tprune.ln_structured(ref, "weight", amount=k, n=2, dim=0)
        assert torch.equal(mask, ref.weight_mask.bool())


def test_ties_are_broken_by_flat_index():
    scores = torch.tensor([3.0, 1.0, 1.0, 1.0, 2.0, 1.0])
    keep = smallest_mask(scores, 3)
    assert keep.tolist() == [True, False, False, False, True, True]


def test_masks_are_deterministic_with_all_equal_weights():
    w = torch.ones(50, 40)
    a = compute_masks(strategy_method("weight"), [w], 0.37)[0]
    b = compute_masks(strategy_method("weight"), [w.clone()], 0.37)[0]
    assert torch.equal(a, b)
    assert int((~a).sum()) == round(0.37 * 2000)
    assert not bool(a.reshape(-1)[: round(0.37 * 2000)].any()), "lowest indices pruned first"


def test_smallest_mask_handles_nothing_and_everything():
    s = torch.rand(7)
    assert bool(smallest_mask(s, 0).all())
    assert not bool(smallest_mask(s, 7).any())


@pytest.mark.parametrize("name", ["random_weight", "random_neuron"])
def test_random_controls_are_exact_and_reproducible_per_seed(net, name):
    weights = [layer.weight for layer in net.layers[:-1]]
    a = compute_masks(strategy_method(name), weights, 0.6, seed=1)
    b = compute_masks(strategy_method(name), weights, 0.6, seed=1)
    c = compute_masks(strategy_method(name), weights, 0.6, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    for w, m in zip(weights, a, strict=True):
        n = w.numel() if name == "random_weight" else w.shape[0]
        removed = int((~m).sum()) if name == "random_weight" else int((~m).all(dim=1).sum())
        assert removed == round(0.6 * n)


def test_global_weight_removes_round_k_of_all_prunable_weights(net):
    weights = [layer.weight.detach() for layer in net.layers[:-1]]
    masks = compute_masks(strategy_method("global_weight"), weights, 0.8)
    total = sum(w.numel() for w in weights)
    assert sum(int((~m).sum()) for m in masks) == round(0.8 * total)
    threshold = max(float(w.abs()[~m].max()) for w, m in zip(weights, masks, strict=True))
    assert all(float(w.abs()[m].min()) >= threshold for w, m in zip(weights, masks, strict=True))


@pytest.mark.parametrize("bad", ["1.0", "1.5", "-0.01", "abc", "null", "true"])
def test_bad_sparsity_is_refused_in_one_line(tmp_path, bad):
    with pytest.raises(ConfigError) as e:
        check_argv([f"sparsity={bad}", f"hydra.run.dir={tmp_path}"])
    assert "\n" not in str(e.value) and str(e.value).startswith("sparsity")


def test_unknown_strategy_names_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"choose one of: .*neuron.*weight"):
        check_argv(["strategy=magnitude", f"hydra.run.dir={tmp_path}"])


def test_unknown_criterion_names_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown strategy.criterion 'l1'.*magnitude.*snip"):
        check_argv(["strategy.criterion=l1", f"hydra.run.dir={tmp_path}"])
    assert set(CRITERIA) >= {"magnitude", "unit_l2", "snip", "synflow"}


def test_effective_sparsity_counts_dead_columns_of_the_next_layer():
    # 4 -> 6 -> 6 -> 2; remove half the units of each hidden layer.
    masks = [torch.ones(6, 4, dtype=torch.bool), torch.ones(6, 6, dtype=torch.bool)]
    masks.append(torch.ones(2, 6, dtype=torch.bool))
    masks[0][:3] = False
    masks[1][:3] = False
    fig = sparsity_report(masks, [True, True, False], k=0.5)
    assert fig["sparsity/global"] == pytest.approx((12 + 18) / 60)
    # layer 2 loses its 3 dead rows (18) and, of the 3 kept rows, 3 dead input columns (9)
    assert fig["sparsity/effective"] == pytest.approx((12 + 27) / 60)
    assert fig["params/effective"] == 12 + 9 + 6  # output keeps only 3 live input columns
    assert fig["flops/compact"] == 2 * (3 * 4 + 3 * 3 + 2 * 3)
    assert fig["flops/dense"] == 2 * (24 + 36 + 12)
    assert fig["sparsity/layer3"] == 0.0
    assert [fig[f"dead_units/layer{i}"] for i in (1, 2, 3)] == [3, 3, 0]


def test_a_unit_that_feeds_nothing_is_dead_too():
    # unit 0 of the hidden layer has incoming weights but no outgoing ones
    masks = [torch.ones(2, 3, dtype=torch.bool), torch.ones(2, 2, dtype=torch.bool)]
    masks[1][:, 0] = False
    alive = alive_units(masks)
    assert alive[0].tolist() == [False, True]
    assert alive[1].tolist() == [True, True]


def test_random_masks_are_independent_of_the_init_with_the_same_seed():
    # Regression: a mask generator seeded like the init removed the most negative initial
    # weights (uniform_ and rand replay the same stream), which destroys the network.
    torch.manual_seed(0)
    net = MaskedMLP([784, 300, 100, 10])
    init = [layer.weight.detach().clone() for layer in net.layers]
    net.prune(strategy_method("random_weight"), 0.25, seed=0)
    for w, layer in zip(init[:-1], net.layers[:-1], strict=True):
        removed = w[~layer.mask]
        bound = w.abs().max()
        assert abs(float(removed.mean())) < 0.05 * float(bound), "removed weights are unbiased"


def test_a_batched_selection_drops_each_rows_own_count_lowest_index_first_on_ties():
    scores = torch.tensor([[3.0, 1.0, 1.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    keep = smallest_masks(scores, [2, 0])
    assert keep.tolist() == [[True, False, False, True, True], [True] * 5]
    assert smallest_masks(scores, [5, 3]).tolist() == [[False] * 5, [False] * 3 + [True] * 2]
    for row, n in zip(scores, [2, 0], strict=True):
        assert torch.equal(smallest_mask(row, n), smallest_masks(row[None], [n])[0])


@pytest.mark.parametrize("ks", [[3, 3, 3], [1, 7, 12]])
def test_the_gpu_selection_finds_the_cpu_selections_thresholds(ks):
    # The torch path (kthvalue for a shared k, else one sort) is the one a GPU takes.
    scores = torch.randint(0, 5, (3, 12)).float()  # many ties
    expected = kth_smallest_rows(scores, ks, numpy=True)
    assert torch.equal(kth_smallest_rows(scores, ks, numpy=False), expected)
    assert expected.tolist() == [
        float(r.sort().values[k - 1]) for r, k in zip(scores, ks, strict=True)
    ]

"""Allocations (how many per layer) and selection (which): hand-computed cases, the
layerwise-shuffle control, and masks that never bring a pruned weight back."""

from __future__ import annotations

import pytest
import torch

from prunelab.allocation import ALLOCATIONS, erk_densities
from prunelab.criteria import ScoreContext, lamp_scores
from prunelab.selection import drawn_generators, method, select_masks, stacked_masks


def ctx_of(weights: list[torch.Tensor], seeds=(0,)) -> ScoreContext:
    masks = [torch.ones_like(w, dtype=torch.bool) for w in weights]
    return ScoreContext(weights, masks, list(range(len(weights))), drawn_generators(list(seeds)))


def test_erk_densities_by_hand():
    # Two layers (out, in) = (4, 2) and (2, 4): raw (n_in + n_out)/(n_in n_out) = 6/8 each,
    # equal, so both keep the overall density 1 - k = 0.25.
    assert erk_densities([(4, 2), (2, 4)], 0.75) == pytest.approx([0.25, 0.25])
    # (10, 10): raw 0.2, 100 weights; (1, 10): raw 1.1, 10 weights. Keep 0.5 · 110 = 55:
    # eps (0.2 · 100 + 1.1 · 10) = 55 → eps = 55/31, the small layer would get 1.1 eps > 1,
    # so it stays dense and the big one keeps (55 - 10)/100 = 0.45.
    assert erk_densities([(10, 10), (1, 10)], 0.5) == pytest.approx([0.45, 1.0])


def test_erk_counts_keep_the_budget_and_favour_small_layers():
    torch.manual_seed(0)
    weights = [torch.randn(1, 300, 784), torch.randn(1, 100, 300), torch.randn(1, 10, 100)]
    masks = stacked_masks(method("magnitude", "erk"), weights, [0.9], [0])
    kept = [int(m.sum()) for m in masks]
    total = sum(w.numel() for w in weights)
    assert abs(sum(kept) - round(0.1 * total)) <= len(weights)  # rounding per layer
    density = [k / w.numel() for k, w in zip(kept, weights, strict=True)]
    assert density[0] < density[1] < density[2]
    # a stack: each member spreads its own k (member 0 as alone, member 1 keeps half)
    other = [torch.randn_like(w) for w in weights]
    stacked = [torch.cat(pair) for pair in zip(weights, other, strict=True)]
    both = stacked_masks(method("magnitude", "erk"), stacked, [0.9, 0.5], [0, 1])
    assert all(torch.equal(b[:1], m) for b, m in zip(both, masks, strict=True))
    assert abs(sum(int(b[1].sum()) for b in both) - round(0.5 * total)) <= len(weights)


def test_global_counts_are_one_threshold_over_all_layers():
    w1 = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    w2 = torch.tensor([[[0.5, 5.0]]])
    masks = stacked_masks(method("magnitude", "global"), [w1, w2], [0.6], [0])
    # 6 weights, drop round(3.6) = 4 smallest: 0.5, 1, 2, 3
    assert masks[0].tolist() == [[[False, False], [False, True]]]
    assert masks[1].tolist() == [[[False, True]]]


def test_lamp_allocation_with_magnitude_equals_the_lamp_criterion_globally():
    torch.manual_seed(1)
    weights = [torch.randn(2, 20, 30), torch.randn(2, 10, 20)]
    a = stacked_masks(method("magnitude", "lamp"), weights, [0.8, 0.95], [0, 1])
    b = stacked_masks(method("lamp", "global"), weights, [0.8, 0.95], [0, 1])
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_lamp_scores_by_hand():
    # |w| sorted 1, 2, 3: squares 1, 4, 9; suffix sums 14, 13, 9 → 1/14, 4/13, 9/9
    w = torch.tensor([[[3.0, -1.0, 2.0]]], dtype=torch.float64)
    assert lamp_scores(w).flatten().tolist() == pytest.approx([1.0, 1 / 14, 4 / 13])


def test_uniform_takes_a_profile_and_the_others_refuse_one():
    assert ALLOCATIONS.get("uniform").per_layer
    assert not any(ALLOCATIONS.get(n).per_layer for n in ("global", "erk", "lamp"))
    assert ALLOCATIONS.get("erk").weights_only and ALLOCATIONS.get("lamp").weights_only


def test_shuffle_keeps_each_layers_count_and_moves_the_weights():
    torch.manual_seed(2)
    weights = [torch.randn(1, 40, 50), torch.randn(1, 20, 40)]
    chosen = stacked_masks(method("magnitude", "global"), weights, [0.9], [3])
    shuffled = stacked_masks(method("magnitude", "global", shuffle=True), weights, [0.9], [3])
    again = stacked_masks(method("magnitude", "global", shuffle=True), weights, [0.9], [3])
    for c, s, a in zip(chosen, shuffled, again, strict=True):
        assert int(c.sum()) == int(s.sum())  # the method's count per layer
        assert not torch.equal(c, s)  # at other places
        assert torch.equal(s, a)  # drawn from the run's mask stream: reproducible


def test_a_unit_shuffle_removes_whole_units():
    torch.manual_seed(3)
    weights = [torch.randn(1, 30, 8), torch.randn(1, 20, 30)]
    masks = stacked_masks(method("unit_l2", "uniform", shuffle=True), weights, [0.5], [0])
    for m in masks:
        rows = m[0]
        assert bool((rows.all(dim=1) | (~rows).all(dim=1)).all())
        assert int((~rows).all(dim=1).sum()) == round(0.5 * rows.shape[0])


def test_a_pruned_weight_is_never_brought_back_while_a_live_one_goes():
    # A criterion that scores a live weight below the dead one (GraSP can: its scores may be
    # negative) must still drop the dead one first.
    w = torch.tensor([[[0.0, 1.0, 2.0, 3.0]]])
    ctx = ctx_of([w])
    ctx.masks[0][0, 0, 0] = False  # weight 0 is pruned already

    class Negative:
        unit, needs_data, rounds = False, False, 1

        def scores(self, c):
            return [torch.tensor([[[0.0, -1.0, 2.0, 3.0]]])]

    m = method("magnitude")
    masks = select_masks(type(m)(Negative(), m.allocation), ctx, [0.5])  # type: ignore[arg-type]
    assert masks[0].tolist() == [[[False, False, True, True]]]


def test_a_unit_criterion_with_a_weight_allocation_is_refused(make_cfg):
    from prunelab.config import load
    from prunelab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"strategy\.allocation=erk spreads weights"):
        load(make_cfg("strategy=neuron", "strategy.allocation=erk"))


def test_a_shuffle_never_brings_back_a_pruned_weight():
    torch.manual_seed(4)
    w = torch.randn(1, 20, 30)
    masks = [torch.ones_like(w, dtype=torch.bool)]
    masks[0][0, :, :15] = False  # half of every row pruned already (and zero)
    w = w * masks[0]
    m = method("magnitude", "global", shuffle=True)
    for seed in range(5):
        [keep] = stacked_masks(m, [w], [0.8], [seed], masks=masks)
        assert not bool((keep & ~masks[0]).any()), "a pruned weight came back"
        assert int((~keep).sum()) == round(0.8 * w.numel())

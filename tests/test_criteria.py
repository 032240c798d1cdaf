"""The data-driven and data-free criteria: hand-computed scores on tiny nets, stacked members
scored as if alone, SynFlow's conservation law, and masks chosen through ``selection``."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch
from torch import Tensor

from prunelab.criteria import CRITERIA, GraSP, ScoreContext, lamp_scores
from prunelab.selection import method, round_sparsity, select_masks, stacked_masks

F64 = torch.float64
NEW = ["snip", "grasp", "synflow", "taylor", "taylor_unit", "activation", "apoz"]
NEW += ["activation_out", "lamp"]
ALL = [*NEW, "magnitude", "unit_l2", "random", "random_unit"]


def t(rows: list) -> Tensor:
    return torch.tensor(rows, dtype=F64)


def context(
    weights: list[Tensor],
    masks: list[Tensor] | None = None,
    batches: list | None = None,
    pruned: list[int] | None = None,
    seeds: list[int] | None = None,
) -> ScoreContext:
    """A ScoreContext of stacked (M, out, in) weights (all kept and all pruned by default)."""
    members = len(weights[0])
    return ScoreContext(
        weights=weights,
        masks=[torch.ones_like(w, dtype=torch.bool) for w in weights] if masks is None else masks,
        pruned=list(range(len(weights))) if pruned is None else pruned,
        gens=[torch.Generator().manual_seed(s) for s in (seeds or range(members))],
        batches=batches or [],
    )


def score(name: str, ctx: ScoreContext) -> list[Tensor]:
    return CRITERIA.get(name)().scores(ctx)


# ------------------------------------------------------------------ the tiny hand-worked net
# sizes [3, 2, 2]; W1 = [[1, 1, 0], [0, -1, 1]], W2 = [[1, 2], [-1, 1]]
# sample a: x = [1, 2, 1], y = 0: z1 = [3, -1], h = [3, 0], logits = [3, -3]
#   p = softmax = [1 - s, s] with s = σ(-6); δ2 = p - e0 = [-s, s]
#   dW2 = δ2 ⊗ h = [[-3s, 0], [3s, 0]]; W2ᵀδ2 = [-s - s, -2s + s] = [-2s, -s]
#   δ1 = W2ᵀδ2 ⊙ (z1 > 0) = [-2s, 0]; dW1 = δ1 ⊗ x = [[-2s, -4s, -2s], [0, 0, 0]]
# sample b: x = [0, 1, 2], y = 1: z1 = [1, 1], h = [1, 1], logits = [3, 0]
#   p = [q, 1 - q] with q = σ(3); δ2 = p - e1 = [q, -q]
#   dW2 = [[q, q], [-q, -q]]; W2ᵀδ2 = [q + q, 2q - q] = [2q, q]
#   δ1 = [2q, q]; dW1 = [[0, 2q, 4q], [0, q, 2q]]
S = 1.0 / (1.0 + math.exp(6.0))
Q = 1.0 / (1.0 + math.exp(-3.0))
W1 = [[1.0, 1.0, 0.0], [0.0, -1.0, 1.0]]
W2 = [[1.0, 2.0], [-1.0, 1.0]]
XA, YA = t([[1.0, 2.0, 1.0]]), torch.tensor([0])
XB, YB = t([[0.0, 1.0, 2.0]]), torch.tensor([1])


def tiny(batches: list | None = None, masks: list[Tensor] | None = None) -> ScoreContext:
    return context([t([W1]), t([W2])], masks=masks, batches=batches)


def close(got: list[Tensor], want: list[list]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, t([w]), rtol=1e-12, atol=1e-14)


def test_snip_by_hand_one_and_two_batches():
    # one batch (a): |W ⊙ dW| = [[2s, 4s, 0], [0, 0, 0]] and [[3s, 0], [3s, 0]]
    close(
        score("snip", tiny([(XA, YA)])), [[[2 * S, 4 * S, 0], [0, 0, 0]], [[3 * S, 0], [3 * S, 0]]]
    )
    # two batches: ḡ = (dW_a + dW_b) / 2, then |W ⊙ ḡ|:
    # layer 1: [[|1·(-2s)/2|, |1·(-4s + 2q)/2|, 0], [0, |-1·q/2|, |1·2q/2|]]
    # layer 2: [[|1·(q - 3s)/2|, |2·q/2|], [|-1·(3s - q)/2|, |1·(-q)/2|]]
    want = [
        [[S, abs(2 * Q - 4 * S) / 2, 0], [0, Q / 2, Q]],
        [[abs(Q - 3 * S) / 2, Q], [abs(3 * S - Q) / 2, Q / 2]],
    ]
    close(score("snip", tiny([(XA, YA), (XB, YB)])), want)


def test_snip_scores_masked_weights_zero_even_if_not_zeroed():
    # mask W1[0, 1] (its weight left at 1): its gradient through w · m is 0, so its score
    masks = [t([[[1, 0, 1], [1, 1, 1]]]).bool(), torch.ones(1, 2, 2, dtype=torch.bool)]
    got = score("snip", tiny([(XA, YA)], masks))
    assert got[0][0, 0, 1] == 0


def test_taylor_by_hand():
    # W ⊙ dW, a: [[-2s, -4s, 0], [0, 0, 0]], [[-3s, 0], [-3s, 0]]
    #          b: [[0, 2q, 0], [0, -q, 2q]],  [[q, 2q], [q, -q]]
    # mean of the squares over the two batches
    want = [
        [[4 * S**2 / 2, (16 * S**2 + 4 * Q**2) / 2, 0], [0, Q**2 / 2, 4 * Q**2 / 2]],
        [[(9 * S**2 + Q**2) / 2, 4 * Q**2 / 2], [(9 * S**2 + Q**2) / 2, Q**2 / 2]],
    ]
    close(score("taylor", tiny([(XA, YA), (XB, YB)])), want)


def test_taylor_unit_by_hand_equals_activation_times_gradient():
    # row sums of W ⊙ dW, a: [-6s, 0], [-3s, -3s]; b: [2q, q], [3q, 0]
    # (= a · ∂L/∂a: a's hidden [3, 0] ⊙ [-2s, -s], logits [3, -3] ⊙ [-s, s]; b's [1, 1] ⊙ [2q, q],
    #  [3, 0] ⊙ [q, -q]); mean of the squares over the two batches
    want = [
        [(36 * S**2 + 4 * Q**2) / 2, Q**2 / 2],
        [(9 * S**2 + 9 * Q**2) / 2, 9 * S**2 / 2],
    ]
    close(score("taylor_unit", tiny([(XA, YA), (XB, YB)])), want)


def test_activation_apoz_activation_out_by_hand():
    # hidden outputs: a [3, 0], b [1, 1]; logits: a [3, -3], b [3, 0]
    batches = [(XA, YA), (XB, YB)]
    # activation: hidden mean [2, 0.5]; output mean |logit| [3, 1.5]
    close(score("activation", tiny(batches)), [[2.0, 0.5], [3.0, 1.5]])
    # 1 - APoZ: hidden positive on [2/2, 1/2]; logits non-zero on [2/2, 1/2]
    close(score("apoz", tiny(batches)), [[1.0, 0.5], [1.0, 0.5]])
    # activation_out: hidden mean × ‖column of W2‖ = [2·√(1+1), 0.5·√(4+1)]; output as activation
    close(
        score("activation_out", tiny(batches)), [[2 * math.sqrt(2), 0.5 * math.sqrt(5)], [3, 1.5]]
    )


def test_activation_weighs_batches_by_their_samples():
    # one batch of a and b, and a batch of b alone: hidden unit 0 outputs 3, 1, 1 → mean 5/3
    both = (torch.cat([XA, XB]), torch.cat([YA, YB]))
    got = score("activation", tiny([both, (XB, YB)]))
    torch.testing.assert_close(got[0], t([[5 / 3, 2 / 3]]))


def test_activation_out_uses_the_masked_outgoing_weights():
    # W2[1, 0] = -1 masked: column 0 of the masked W2 is [1, 0], so hidden unit 0 scores 2 · 1
    masks = [torch.ones(1, 2, 3, dtype=torch.bool), t([[[1, 1], [0, 1]]]).bool()]
    got = score("activation_out", tiny([(XA, YA), (XB, YB)], masks))
    assert got[0][0, 0].item() == pytest.approx(2.0)


def test_synflow_by_hand_and_with_a_mask():
    # |W1| = [[1, 1, 0], [0, 1, 1]], |W2| = [[1, 2], [1, 1]], input [1, 1, 1]:
    # z1 = [2, 2], logits = [2 + 4, 2 + 2], R = 10; ∂R/∂W2[j, k] = z1[k] = 2
    # ∂R/∂z1 = column sums of |W2| = [2, 3], ∂R/∂W1[k, i] = [2, 3][k] · 1
    close(score("synflow", tiny()), [[[2, 2, 0], [0, 3, 3]], [[2, 4], [2, 2]]])
    # W2[0, 1] masked: |W2| · m = [[1, 0], [1, 1]], logits = [2, 4], column sums [2, 1]
    masks = [torch.ones(1, 2, 3, dtype=torch.bool), t([[[1, 0], [1, 1]]]).bool()]
    close(score("synflow", tiny(masks=masks)), [[[2, 2, 0], [0, 1, 1]], [[2, 0], [2, 2]]])


def test_synflow_survives_a_float32_overflow_and_returns_float32():
    # 14 layers of 10 × 10 weights 100 (each multiplies the flow by 10 · 100 = 1000), then 14
    # of 1e-4 (each × 1e-3): the flow peaks at 1e42 (past float32's 3.4e38) and ends at 1
    # per logit, R = 10. Every layer's scores sum to R and are all equal: 10 / 100 = 0.1.
    weights = [torch.full((1, 10, 10), 100.0) for _ in range(14)]
    weights += [torch.full((1, 10, 10), 1e-4) for _ in range(14)]
    got = score("synflow", context(weights, pruned=[0, 13, 14, 27]))
    for g in got:
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, torch.full_like(g, 0.1), rtol=1e-5, atol=0)


def test_lamp_by_hand_on_the_masked_weights():
    w = t([[[3.0, -1.0], [2.0, 0.0]]])
    # |w| ascending 0, 1, 2, 3; squares 0, 1, 4, 9; sums of those ≥: 14, 14, 13, 9
    close(score("lamp", context([w])), [[[9 / 9, 1 / 14], [4 / 13, 0]]])
    # 3 masked: 0, 0, 1, 2; squares 0, 0, 1, 4; sums ≥: 5, 5, 5, 4 (the masked one scores 0)
    masks = [t([[[0, 1], [1, 1]]]).bool()]
    close(score("lamp", context([w], masks)), [[[0, 1 / 5], [4 / 4, 0]]])


# ------------------------------------------------------------ GraSP by finite differences


def explicit_loss(w1: Tensor, w2: Tensor, xs: Tensor, ys: Tensor, temperature: float) -> Tensor:
    """The net's mean cross-entropy, sample by sample, with logits over ``temperature``."""
    total = torch.zeros((), dtype=F64)
    for x, y in zip(xs, ys, strict=True):
        logits = (w2 @ torch.clamp(w1 @ x, min=0.0)) / temperature
        total = total + torch.logsumexp(logits, 0) - logits[y]
    return total / len(xs)


def fd_grasp(w1: Tensor, w2: Tensor, batches: list, temperature: float) -> Tensor:
    """θ ⊙ Hg by nested central differences of ``explicit_loss`` (flattened, W1 then W2):
    g = Σ_b ∇L_b by differences per weight, z(θ) = Σ_b ∇L_b(θ) · g as a difference along g,
    Hg = ∇z by differences per weight."""
    theta = torch.cat([w1.flatten(), w2.flatten()])
    eye = torch.eye(len(theta), dtype=F64)
    n1 = w1.numel()

    def loss(v: Tensor) -> Tensor:
        a, b = v[:n1].reshape(w1.shape), v[n1:].reshape(w2.shape)
        return sum(explicit_loss(a, b, xs, ys, temperature) for xs, ys in batches)

    eps = 1e-5
    g = torch.stack([(loss(theta + eps * e) - loss(theta - eps * e)) / (2 * eps) for e in eye])
    h = 1e-4 / float(g.norm())

    def z(v: Tensor) -> Tensor:
        return (loss(v + h * g) - loss(v - h * g)) / (2 * h)

    d = 1e-4
    hg = torch.stack([(z(theta + d * e) - z(theta - d * e)) / (2 * d) for e in eye])
    return theta * hg


@pytest.mark.parametrize("temperature", [200.0, 1.0])
def test_grasp_is_plus_theta_times_hessian_gradient(temperature):
    """+θ ⊙ Hg against finite differences of an explicit loss (summing the batches' losses
    gives Σ_b ∇L_b and Σ_b ∇L_b · g at once), at GraSP's T = 200 and at T = 1."""
    torch.manual_seed(3)
    w1, w2 = torch.randn(4, 3, dtype=F64), torch.randn(3, 4, dtype=F64)
    batches = [(torch.randn(5, 3, dtype=F64), torch.randint(0, 3, (5,))) for _ in range(2)]
    want = fd_grasp(w1, w2, batches, temperature)
    hot = type("Hot", (GraSP,), {"temperature": temperature})()
    got = hot.scores(context([w1[None], w2[None]], batches=batches))
    flat = torch.cat([s.flatten() for s in got])
    scale = float(want.abs().max())
    assert scale > 0
    torch.testing.assert_close(flat, want, rtol=1e-4, atol=1e-4 * scale)


def test_grasp_masks_remove_the_largest_minus_theta_hg_as_the_official_code():
    """The official code removes the ``topk`` largest −θ ⊙ Hg: the masks chosen here must
    drop exactly those, with −θ ⊙ Hg taken from finite differences."""
    torch.manual_seed(4)
    w1, w2 = torch.randn(6, 5, dtype=F64), torch.randn(3, 6, dtype=F64)
    batches = [(torch.randn(8, 5, dtype=F64), torch.randint(0, 3, (8,)))]
    official = -fd_grasp(w1, w2, batches, GraSP.temperature)
    n_remove = round(0.5 * official.numel())
    top = official.topk(n_remove + 1).values
    assert float(top[-2] - top[-1]) > 1e-3 * float(official.abs().max())  # a clear cut
    removed_official = set(official.topk(n_remove).indices.tolist())
    weights = [w1[None], w2[None]]
    masks = stacked_masks(method("grasp", "global"), weights, [0.5], [0], batches=batches)
    removed = torch.cat([(~m).flatten() for m in masks]).nonzero().flatten().tolist()
    assert set(removed) == removed_official


# ------------------------------------------------------------------ stacked = separate


def random_stack(members: int, sizes: list[int], seed: int) -> tuple[list[Tensor], list[Tensor]]:
    """Weights (float64) and masks of ``members`` different members; ~20 % masked and zeroed."""
    gen = torch.Generator().manual_seed(seed)
    weights, masks = [], []
    for n_in, n_out in pairwise(sizes):
        w = torch.randn(members, n_out, n_in, generator=gen, dtype=F64)
        m = torch.rand(members, n_out, n_in, generator=gen) > 0.2
        weights.append(w * m)
        masks.append(m)
    return weights, masks


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per_member"])
@pytest.mark.parametrize("name", ALL)
def test_stacked_scores_equal_each_member_alone(name, shared):
    members, sizes, batch = 3, [5, 4, 4, 3], 6
    weights, masks = random_stack(members, sizes, seed=11)
    gen = torch.Generator().manual_seed(12)
    lead = () if shared else (members,)
    batches = [
        (
            torch.randn(*lead, batch, sizes[0], generator=gen, dtype=F64),
            torch.randint(0, sizes[-1], (*lead, batch), generator=gen),
        )
        for _ in range(2)
    ]
    stack = score(name, context(weights, masks, batches, seeds=[7, 8, 9]))
    for i in range(members):
        own = batches if shared else [(x[i : i + 1], y[i : i + 1]) for x, y in batches]
        alone = score(
            name,
            context(
                [w[i : i + 1] for w in weights],
                [m[i : i + 1] for m in masks],
                own,
                seeds=[7 + i],
            ),
        )
        for s, a in zip(stack, alone, strict=True):
            torch.testing.assert_close(s[i : i + 1], a, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", NEW)
def test_scores_have_the_layer_shapes_and_only_the_pruned_layers(name):
    weights, masks = random_stack(2, [5, 4, 3], seed=5)
    batches = [(torch.randn(4, 5, dtype=F64), torch.randint(0, 3, (4,)))]
    criterion = CRITERIA.get(name)
    got = criterion().scores(context(weights, masks, batches, pruned=[1]))
    assert len(got) == 1
    assert got[0].shape == ((2, 3) if criterion.unit else (2, 3, 4))
    assert bool(torch.isfinite(got[0]).all())


@pytest.mark.parametrize("name", [n for n in NEW if CRITERIA.get(n).needs_data])
def test_data_criteria_refuse_an_empty_batch_list(name):
    with pytest.raises(ValueError, match="needs data"):
        score(name, tiny())


def test_declared_kinds():
    unit = {n for n in NEW if CRITERIA.get(n).unit}
    data = {n for n in NEW if CRITERIA.get(n).needs_data}
    assert unit == {"taylor_unit", "activation", "apoz", "activation_out"}
    assert data == {
        "snip",
        "grasp",
        "taylor",
        "taylor_unit",
        "activation",
        "apoz",
        "activation_out",
    }
    assert CRITERIA.get("synflow").rounds == 100
    assert CRITERIA.get("grasp").temperature == 200


# ------------------------------------------------------------------ SynFlow's conservation law


def test_synflow_conserves_the_flow_in_every_layer():
    """Tanaka et al.'s Theorem: each layer's scores sum to R, the same in every layer."""
    weights, masks = random_stack(2, [7, 6, 5, 4, 3], seed=21)
    got = score("synflow", context(weights, masks))
    sums = torch.stack([s.sum(dim=(1, 2)) for s in got])  # (layers, members)
    # R itself, by an explicit product: 1ᵀ |W4| |W3| |W2| |W1| 1 per member
    for i in range(2):
        v = torch.ones(7, dtype=F64)
        for w in weights:
            v = w[i].abs() @ v
        torch.testing.assert_close(sums[:, i], v.sum().expand(4), rtol=1e-12, atol=0)
    assert not torch.allclose(sums[:, 0], sums[:, 1])  # the members differ


# ------------------------------------------------------------------ masks through selection


def small_net(seed: int) -> tuple[list[Tensor], tuple[Tensor, Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    sizes = [12, 10, 8, 4]
    weights = [torch.randn(1, o, i, generator=gen) / i**0.5 for i, o in pairwise(sizes)]
    batch = (torch.randn(32, sizes[0], generator=gen), torch.randint(0, 4, (32,), generator=gen))
    return weights, batch


@pytest.mark.parametrize("name", NEW)
def test_global_masks_remove_exactly_round_k_n(name):
    weights, batch = small_net(0)
    m = method(name, "global")
    masks = stacked_masks(m, weights, ks=[0.9], seeds=[0], batches=[batch])
    assert [mk.shape for mk in masks] == [w.shape for w in weights]
    if m.criterion.unit:  # whole rows: round(0.9 · units) of them
        n = sum(w.shape[1] for w in weights)
        removed = sum(int((~mk).all(dim=2).sum()) for mk in masks)
        assert all(bool((mk.all(dim=2) | (~mk).all(dim=2)).all()) for mk in masks)
    else:
        n = sum(w[0].numel() for w in weights)
        removed = sum(int((~mk).sum()) for mk in masks)
    assert removed == round(0.9 * n)


def test_snip_masks_differ_from_magnitude_masks():
    weights, batch = small_net(1)
    snip = stacked_masks(method("snip", "global"), weights, [0.9], [0], batches=[batch])
    magnitude = stacked_masks(method("magnitude", "global"), weights, [0.9], [0], batches=[batch])
    assert any(not torch.equal(a, b) for a, b in zip(snip, magnitude, strict=True))


@pytest.mark.parametrize("allocation", ["global", "uniform"])
def test_synflow_over_100_rounds_ends_at_the_requested_sparsity(allocation):
    weights, _ = small_net(2)
    m = method("synflow", allocation)
    ctx = context(weights)
    masks = select_masks(m, ctx, [0.8])
    if allocation == "global":
        total = sum(w.numel() for w in weights)
        assert sum(int((~mk).sum()) for mk in masks) == round(0.8 * total)
    else:
        assert [int((~mk).sum()) for mk in masks] == [round(0.8 * w.numel()) for w in weights]


def test_synflow_rounds_rescore_with_the_new_masks():
    """Iterative SynFlow differs from one shot of its first scores (else rounds are idle)."""
    weights, _ = small_net(3)
    iterative = select_masks(method("synflow", "global"), context(weights), [0.95])
    one_shot = stacked_masks(method("magnitude", "global"), weights, [0.95], [0])
    flat = torch.cat([s.flatten() for s in score("synflow", context(weights))])
    keep = flat > flat.kthvalue(round(0.95 * flat.numel())).values
    assert not torch.equal(torch.cat([mk.flatten() for mk in iterative]), keep)
    assert any(not torch.equal(a, b) for a, b in zip(iterative, one_shot, strict=True))
    # halfway through the rounds the density is the geometric mean: 1 % kept → 10 %
    assert round_sparsity(0.99, 0.5) == pytest.approx(0.9)
    assert round_sparsity([0.75, 0.0], 0.5) == pytest.approx([0.5, 0.0]), "one k per layer"


def test_lamp_scores_match_the_function_on_masked_weights():
    weights, masks = random_stack(2, [5, 4, 3], seed=8)
    unzeroed = [w + (~m) * 5.0 for w, m in zip(weights, masks, strict=True)]  # masked ≠ 0
    got = score("lamp", context(unzeroed, masks))
    for g, w in zip(got, weights, strict=True):
        torch.testing.assert_close(g, lamp_scores(w))

"""Any model: conv nets and a user's own module through prunelab's layer graph, criteria,
allocations and stacks (``models``, ``layout``, ``stack``), each checked against a case
computed by hand or by the plain model itself."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunelab import models
from prunelab.allocation import erk_densities
from prunelab.criteria import CRITERIA
from prunelab.layout import read_graph
from prunelab.pruning import sparsity_report
from prunelab.selection import method
from prunelab.stack import MaskedNet, StackedNet

TINY = "tests.plugin_model:TinyConv"
WEIGHT_CRITERIA = ["magnitude", "random", "snip", "grasp", "synflow", "taylor", "lamp", "gradient"]
UNIT_CRITERIA = ["unit_l2", "random_unit", "taylor_unit", "activation", "apoz", "activation_out"]


class ConvToFc(nn.Module):
    """conv 1→2 (2×2) on 3×3 inputs → ReLU → flatten (2 channels × 2×2) → fc 8→2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 2, bias=False)
        self.fc = nn.Linear(8, 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(x)).flatten(1))


def tiny_members(n: int, dtype: torch.dtype = torch.float64) -> list[MaskedNet]:
    return [models.masked_member(TINY, (1, 28, 28), 10, seed=s).to(dtype) for s in range(n)]


def batch(m: int | None = None, n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (n, 784) if m is None else (m, n, 784)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    return x, torch.randint(0, 10, shape[:-1], generator=g)


def test_lenet5_and_conv6_have_the_published_layers():
    lenet = models.build("lenet5", (1, 28, 28), 10)
    shapes = [tuple(p.shape) for p in lenet.parameters()]
    assert shapes == [(20, 1, 5, 5), (50, 20, 5, 5), (500, 800), (10, 500)]
    assert sum(p.numel() for p in lenet.parameters()) == 430_500
    conv6 = models.build("conv6", (3, 32, 32), 10)
    assert sum(p.numel() for p in conv6.parameters()) == 2_261_184
    assert len(list(models.build("lenet5", (1, 28, 28), 10, bias=True).parameters())) == 8


def test_the_graph_is_read_from_the_model():
    g = read_graph(models.build("lenet5", (1, 28, 28), 10), (1, 28, 28))
    assert g.names == ("conv1.weight", "conv2.weight", "fc3.weight", "fc4.weight")
    assert g.feeds == (1, 2, 3, None)
    assert g.repeat == (1, 16, 1, 1)  # 50 channels of 4×4 flattened into fc3
    assert g.positions == (24 * 24, 8 * 8, 1, 1)
    r = read_graph(models.build("tests.plugin_model:Residual", (1, 4, 4), 3), (1, 4, 4))
    assert r.blocked[0] == "its output feeds a sum (add)" and r.feeds[1] is None


def test_effective_sparsity_counts_the_dead_channels_of_a_conv_by_hand():
    net = MaskedNet(ConvToFc(), (1, 3, 3))
    assert net.layout.repeat == (4, 1) and net.layout.positions == (4, 1)
    net.masks()[0][1] = False  # filter 1 gone: its 4 columns of the fc read nothing
    fig = sparsity_report(net.masks(), [True, True], 0.0, net.layout)
    assert fig["dead_units/layer1"] == 1.0
    assert fig["sparsity/global"] == pytest.approx(4 / 24)
    assert fig["sparsity/effective"] == pytest.approx((4 + 8) / 24)
    assert fig["flops/dense"] == 2 * (8 * 4 + 16)
    assert fig["flops/compact"] == 2 * (1 * 1 * 4 * 4 + 2 * 1 * 4)
    assert fig["flops/sparse"] == 2 * (4 * 4 + 8)


def test_erk_has_the_kernel_term():
    d = erk_densities([(4, 2, 3, 3), (5, 4)], 0.5)
    eps = 0.5 * (72 + 20) / (12 + 9)  # budget over Σ raw · size, raw = Σ shape / Π shape
    assert d == pytest.approx([eps * 12 / 72, eps * 9 / 20])


def test_unit_scores_of_a_conv_are_its_filters_and_units_go_whole():
    net = tiny_members(1)[0]
    norms = net.weights()[0].detach().flatten(1).norm(dim=1)
    net.prune(method("unit_l2"), 0.5)
    kept = net.masks()[0].flatten(1).all(dim=1)
    assert kept.nonzero().flatten().tolist() == sorted(norms.topk(2).indices.tolist())
    assert net.masks()[0].flatten(1).any(dim=1).tolist() == kept.tolist()  # whole filters


def test_activation_of_a_conv_channel_is_its_mean_over_samples_and_positions():
    stack = StackedNet(tiny_members(1))
    x, y = batch()
    scores = CRITERIA.get("activation")().scores(ctx_of(stack, [(x, y)]))
    model = stack.unstack(0).model
    z = F.relu(model.conv(x.reshape(-1, 1, 28, 28)))
    torch.testing.assert_close(scores[0][0], z.mean(dim=(0, 2, 3)))


def test_synflow_runs_the_model_itself():
    stack = StackedNet(tiny_members(1))
    scores = CRITERIA.get("synflow")().scores(ctx_of(stack, []))
    model = stack.unstack(0).model.double()
    for p in model.parameters():
        p.data.abs_()
    model(torch.ones(1, 1, 28, 28, dtype=torch.float64)).sum().backward()
    expected = [(p.grad * p).abs() for n, p in model.named_parameters() if n.endswith("weight")]
    for s, e in zip(scores, expected[:-1], strict=True):  # the output layer is not pruned
        torch.testing.assert_close(s[0], e)


def ctx_of(stack: StackedNet, batches: list) -> object:
    from prunelab.criteria import ScoreContext
    from prunelab.selection import drawn_generators

    return ScoreContext(
        weights=[layer.weight.detach() for layer in stack.layers],
        masks=[layer.mask for layer in stack.layers],
        pruned=list(range(len(stack.layers) - 1)),
        gens=drawn_generators(list(range(len(stack)))),
        batches=batches,
        network=stack.network(),
    )


@pytest.mark.parametrize("criterion", WEIGHT_CRITERIA + UNIT_CRITERIA)
def test_a_stack_gives_each_member_the_masks_of_its_separate_run(criterion):
    members = tiny_members(3)
    stack = StackedNet(members)
    x, y = batch(3)
    ks = [0.3, 0.5, 0.7]
    stack.prune([0, 1, 2], method(criterion), ks, seeds=[0, 1, 2], batches=[(x, y)])
    for i, member in enumerate(members):
        member.prune(method(criterion), ks[i], seed=i, batches=[(x[i], y[i])])
        for a, b in zip(stack.masks(i), member.masks(), strict=True):
            assert torch.equal(a, b), (criterion, i)


def test_a_stack_trains_each_member_as_its_separate_run():
    members = tiny_members(3)
    for i, m in enumerate(members):
        m.prune(method("magnitude"), 0.2 * (i + 1), seed=i)
    stack = StackedNet(members)
    alone = [stack.unstack(i) for i in range(3)]
    opt = torch.optim.SGD(stack.parameters(), lr=0.1)
    opts = [torch.optim.SGD(m.model.parameters(), lr=0.1) for m in alone]
    for step in range(3):
        x, y = batch(seed=step)
        losses = F.cross_entropy(stack(x).reshape(-1, 10), y.repeat(3), reduction="none")
        opt.zero_grad()
        losses.view(3, -1).mean(dim=1).sum().backward()
        opt.step()
        for i, (m, o) in enumerate(zip(alone, opts, strict=True)):
            loss = F.cross_entropy(m(x), y)
            o.zero_grad()
            loss.backward()
            o.step()
            assert loss.item() == pytest.approx(losses.view(3, -1).mean(dim=1)[i].item(), abs=1e-5)


def test_units_that_feed_a_sum_are_refused_in_one_line_and_weights_still_prune():
    net = models.masked_member("tests.plugin_model:Residual", (1, 4, 4), 3, seed=0)
    refusal = r"^cannot prune units of a\.weight: its output feeds a sum"
    with pytest.raises(ValueError, match=refusal):
        net.prune(method("unit_l2"), 0.5)
    net.prune(method("magnitude"), 0.5)
    assert net.sparsity(0.5)["sparsity/layer1"] == pytest.approx(0.5)


def test_a_model_from_outside_src_takes_its_own_arguments():
    net = models.build(TINY, (1, 28, 28), 10, args={"width": 6})
    assert net.conv.out_channels == 6
    with pytest.raises(ValueError, match="takes no `bias`"):
        models.build("tests.plugin_model:Residual", (1, 4, 4), 3, bias=True)


@pytest.mark.parametrize("allocation", ["uniform", "global", "erk", "lamp"])
def test_every_weight_criterion_and_allocation_prunes_a_conv_net_to_its_target(allocation):
    x, y = batch()
    for criterion in WEIGHT_CRITERIA:
        net = tiny_members(1)[0]
        net.prune(method(criterion, allocation), 0.9, batches=[(x, y)])
        kept = sum(m.sum().item() for m in net.masks()[:-1])
        total = sum(math.prod(m.shape) for m in net.masks()[:-1])
        assert 1 - kept / total == pytest.approx(0.9, abs=2e-3), (criterion, allocation)
        assert net.sparsity(0.9)["sparsity/global"] == pytest.approx(0.9, abs=2e-3)


@pytest.mark.parametrize("bias", [False, True])
def test_compaction_returns_a_smaller_conv_net_with_the_same_logits(bias):
    from prunelab.compaction import compact_net
    from prunelab.sparse import export

    net = models.masked_member("lenet5", (1, 28, 28), 10, seed=0, bias=bias).double()
    net.prune(method("unit_l2"), 0.7)
    small = compact_net(net)
    assert [tuple(w.shape) for w in small.weights()] == [
        (6, 1, 5, 5), (15, 6, 5, 5), (150, 15 * 16), (10, 150)
    ]  # fmt: skip
    x, _ = batch()
    torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-5)
    assert small.sparsity(0.7)["flops/dense"] == net.sparsity(0.7)["flops/compact"]
    weights = models.masked_member("lenet5", (1, 28, 28), 10, seed=0, bias=bias).double()
    weights.prune(method("magnitude"), 0.95)
    for target in ["dense", "compact", "csr", "auto"]:
        exported = export(weights, target, timer=lambda w, b: {"dense": 1.0, "csr": 0.1},
                          model_timer=lambda m, b: 0.5 if "csr" in m.kinds else 1.0)  # fmt: skip
        torch.testing.assert_close(exported(x), weights(x), rtol=0, atol=1e-5)
        assert ("csr" in exported.kinds) == (target in ("csr", "auto")), target


@pytest.mark.parametrize("criterion", WEIGHT_CRITERIA + UNIT_CRITERIA)
def test_every_criterion_prunes_lenet5(criterion):
    net = models.masked_member("lenet5", (1, 28, 28), 10, seed=0)
    x, y = torch.rand(8, 784), torch.randint(0, 10, (8,))
    net.prune(method(criterion), 0.5, batches=[(x, y)])
    fig = net.sparsity(0.5)
    for layer in (1, 2, 3):
        assert fig[f"sparsity/layer{layer}"] == pytest.approx(0.5, abs=0.02), (criterion, layer)
    assert fig["sparsity/layer4"] == 0.0  # the output layer is not pruned
    if criterion in UNIT_CRITERIA:
        assert fig["dead_units/layer1"] == 10 and fig["sparsity/effective"] > 0.5


def plain_gradients(stack: StackedNet, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """d(loss)/d(weight) of member 0 alone, by autograd on the plain model: the reference a
    gradient criterion's score on a conv net must match."""
    model = stack.unstack(0).model
    F.cross_entropy(model(x.reshape(-1, 1, 28, 28)), y).backward()
    return [p.grad for n, p in model.named_parameters() if n.endswith("weight")]


@pytest.mark.parametrize("criterion", ["snip", "taylor", "gradient"])
def test_gradient_criteria_on_a_conv_are_those_of_the_plain_model(criterion):
    stack = StackedNet(tiny_members(1))
    x, y = batch()
    scores = CRITERIA.get(criterion)().scores(ctx_of(stack, [(x, y)]))
    grads = plain_gradients(stack, x, y)
    weights = [layer.weight[0].detach() for layer in stack.layers]
    expected = {
        "snip": lambda w, g: (w * g).abs(),  # Lee et al. 2019: |w ⊙ ∂L/∂w|
        "taylor": lambda w, g: (w * g).square(),  # Molchanov et al. 2019, one batch
        "gradient": lambda w, g: g.abs(),  # RigL's growth score, every weight live here
    }[criterion]
    for s, w, g in zip(scores, weights[:-1], grads[:-1], strict=True):  # output: not pruned
        torch.testing.assert_close(s[0], expected(w, g))


def test_grasp_on_a_conv_is_the_plain_models_hessian_gradient_product():
    """GraSP (Wang et al. 2020): θ ⊙ Hg with the logits over T = 200, g the gradient."""
    stack = StackedNet(tiny_members(1))
    x, y = batch()
    scores = CRITERIA.get("grasp")().scores(ctx_of(stack, [(x, y)]))
    model = stack.unstack(0).model
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    loss = F.cross_entropy(model(x.reshape(-1, 1, 28, 28)) / 200.0, y)
    grads = torch.autograd.grad(loss, weights, create_graph=True)
    z = sum((gr * gr.detach()).sum() for gr in grads)
    hg = torch.autograd.grad(z, weights)
    for s, w, h in zip(scores, weights[:-1], hg[:-1], strict=True):
        torch.testing.assert_close(s[0], (w * h).detach())

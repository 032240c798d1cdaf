"""Pruning criteria: how important each weight (or unit) of a layer is, for every member.

A criterion is one small class in ``CRITERIA``: ``scores(ctx)`` returns one tensor per
pruned layer, (M, out, in) for weight scores or (M, out) for unit scores (a unit is a row of
``linear.weight``), where a *higher* score means *keep*. It declares what it needs and the
pruning callback hands exactly that over in a ``ScoreContext``: the weights and masks of every
layer, each member's random generator, and, when ``needs_data`` is set, a few training
batches. Which scores are removed, and how many per layer, is not the criterion's business
(``allocation``); ``pruning.select_masks`` joins the two, batched over the member axis, so a
member's mask never depends on the other members of its stack.

The data-driven criteria run their own forward and backward passes on copies of the weights
(``forward``, ``member_losses``): they never touch the module's gradients or the optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from prunelab.functional import member_losses, stacked_linear
from prunelab.lazy import lazy_import
from prunelab.registry import Registry

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_import("torch", __name__, "torch")
F = lazy_import("torch.nn.functional", __name__, "F")

Batch = tuple["Tensor", "Tensor"]  # (x, y); x (B, in) shared or (M, B, in)


@dataclass
class ScoreContext:
    """What a criterion may read. Tensors are detached; every list of weights or masks
    covers *all* layers (the criteria that run the network need them), ``pruned`` says which
    are being pruned, in order. ``batches`` is empty unless the criterion ``needs_data``;
    each is (x, y) with x (B, in) shared by the members or (M, B, in), one slice per member."""

    weights: list[Tensor]
    masks: list[Tensor]
    pruned: list[int]
    gens: list[torch.Generator]
    batches: list[Batch] = field(default_factory=list)

    @property
    def members(self) -> int:
        return int(self.weights[0].shape[0])

    def pruned_weights(self) -> list[Tensor]:
        return [self.weights[i] for i in self.pruned]

    def pruned_masks(self) -> list[Tensor]:
        return [self.masks[i] for i in self.pruned]


class Criterion:
    """Scores per pruned layer, higher = keep. Subclasses set the class attributes that say
    what they are and need, and implement ``scores``."""

    unit: ClassVar[bool] = False  # one score per unit (row) instead of per weight
    needs_data: ClassVar[bool] = False  # ask the callback for training batches
    # Prune in this many rounds, each to a sparsity on the way (density shrinking
    # geometrically) and re-scored with the masks of the round before (SynFlow: 100).
    rounds: ClassVar[int] = 1

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        raise NotImplementedError


def is_criterion(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, Criterion)


CRITERIA: Registry[type[Criterion]] = Registry("criterion", "strategy.criterion", is_criterion)


def random_scores(shape: tuple[int, ...], like: Tensor, gens: Sequence[torch.Generator]) -> Tensor:
    """Uniform scores, member i's from its own generator: its draws do not depend on the
    stack it trains in. Drawn on the CPU (the same numbers on every device)."""
    return torch.stack([torch.rand(shape, generator=g, device="cpu") for g in gens]).to(
        device=like.device, dtype=like.dtype if like.is_floating_point() else torch.float32
    )


@CRITERIA.register("magnitude")
class Magnitude(Criterion):
    """|w|: the challenge's weight pruning (Han et al. 2015)."""

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        return [w.abs() for w in ctx.pruned_weights()]


@CRITERIA.register("unit_l2")
class UnitL2(Criterion):
    """The L2 norm of a unit's incoming weights: the challenge's unit (neuron) pruning."""

    unit = True

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        return [w.norm(dim=2) for w in ctx.pruned_weights()]


@CRITERIA.register("random")
class Random(Criterion):
    """Control: weights chosen at random (the run's ``mask`` stream)."""

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        return [random_scores(tuple(w.shape[1:]), w, ctx.gens) for w in ctx.pruned_weights()]


@CRITERIA.register("random_unit")
class RandomUnit(Criterion):
    """Control: units chosen at random (the run's ``mask`` stream)."""

    unit = True

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        return [random_scores((w.shape[1],), w, ctx.gens) for w in ctx.pruned_weights()]


# ------------------------------------------------------------------ running the network


def forward(
    weights: Sequence[Tensor], masks: Sequence[Tensor], x: Tensor
) -> tuple[Tensor, list[Tensor]]:
    """The stacked MLP on ``x`` ((B, in) shared, or (M, B, in)) with these weights and masks:
    logits (M, B, classes) and each hidden layer's output after its ReLU, (M, B, out).

    The same arithmetic as ``nets.StackedLayer`` (``functional.stacked_linear``), so scores
    computed in a stack match a separate run's to rounding.
    """
    hidden = []
    h = x
    for i, (w, m) in enumerate(zip(weights, masks, strict=True)):
        z = stacked_linear(h, w * m)
        if i < len(weights) - 1:
            h = F.relu(z)
            hidden.append(h)
        else:
            h = z
    return h, hidden


def loss_gradients(ctx: ScoreContext, batch: Batch) -> list[Tensor]:
    """d(loss)/d(weight) of every layer on one batch, each member its own, (M, out, in) per
    layer; the weights of ``ctx`` are left as they are."""
    weights = [w.detach().clone().requires_grad_(True) for w in ctx.weights]
    with torch.enable_grad():
        logits, _ = forward(weights, ctx.masks, batch[0])
        grads = torch.autograd.grad(member_losses(logits, batch[1]).sum(), weights)
    return [g.detach() for g in grads]


def lamp_scores(w: Tensor) -> Tensor:
    """LAMP (Lee et al. 2021) of weights ``w`` (M, out, in): w_u² over the sum of w_v² of
    every weight v of the layer at least as large (in the order of a stable ascending sort),
    so each layer's largest weight scores 1 and scores compare across layers."""
    flat = w.reshape(len(w), -1).abs()
    sq = flat.square()
    order = flat.argsort(dim=1, stable=True)
    sorted_sq = sq.gather(1, order)
    suffix = sorted_sq.flip(1).cumsum(1).flip(1)
    scores = torch.zeros_like(sq).scatter_(1, order, sorted_sq / suffix.clamp_min(1e-300))
    return scores.reshape(w.shape)


# ------------------------------------------------------------------ helpers of the criteria


def require_batches(ctx: ScoreContext, name: str) -> list[Batch]:
    """``ctx.batches``, or an error naming the criterion: a data-driven score of no data
    would silently be all zeros."""
    if not ctx.batches:
        raise ValueError(f"the {name!r} criterion needs data, but ScoreContext.batches is empty")
    return ctx.batches


def masked_weights(ctx: ScoreContext) -> list[Tensor]:
    """Every layer's weights times its mask: what the network computes with."""
    return [w * m for w, m in zip(ctx.weights, ctx.masks, strict=True)]


def batch_gradients(ctx: ScoreContext) -> list[list[Tensor]]:
    """The loss gradient of each pruned layer on each batch, ``[batch][pruned layer]``,
    (M, out, in) each; a masked-out weight's gradient is 0 (``forward`` multiplies by the
    mask), so it scores 0 in every product with its gradient."""
    per_batch = [loss_gradients(ctx, batch) for batch in ctx.batches]
    return [[grads[i] for i in ctx.pruned] for grads in per_batch]


def mean_gradients(ctx: ScoreContext) -> list[Tensor]:
    """The gradient of the loss averaged over ``ctx.batches``, per pruned layer."""
    per_batch = batch_gradients(ctx)
    return [torch.stack(layer).mean(dim=0) for layer in zip(*per_batch, strict=True)]


def unit_means(ctx: ScoreContext, stat: Callable[[Tensor], Tensor]) -> list[Tensor]:
    """``stat`` of each pruned layer's output (after the ReLU for a hidden layer, the logits
    for the output layer), averaged over every sample of ``ctx.batches``: (M, out) per layer.

    Averaged per sample, not per batch, so batches of unequal size weigh by their samples."""
    totals: list[Tensor] = []
    count = 0
    with torch.no_grad():
        for x, _ in ctx.batches:
            logits, hidden = forward(ctx.weights, ctx.masks, x)
            outs = [*hidden, logits]
            sums = [stat(outs[i]).to(ctx.weights[i].dtype).sum(dim=1) for i in ctx.pruned]
            totals = sums if not totals else [t + s for t, s in zip(totals, sums, strict=True)]
            count += int(logits.shape[1])
    return [t / count for t in totals]


def grasp_hessian_gradient(ctx: ScoreContext, temperature: float) -> list[Tensor]:
    """Hg of every layer, GraSP's way: g = Σ_b ∇L_b (detached), then the gradient of
    z = Σ_b ∇L_b · g, with L_b the loss of batch b on logits divided by ``temperature``.

    All members at once: z summed over the members is a sum of functions of disjoint
    weights, so its gradient in member i's weights is member i's own H_i g_i. One batch's
    double-backward graph at a time (the official code calls ``z.backward()`` per batch)."""
    weights = [w.detach().clone().requires_grad_(True) for w in ctx.weights]

    def loss(batch: Batch) -> Tensor:
        logits, _ = forward(weights, ctx.masks, batch[0])
        return member_losses(logits / temperature, batch[1]).sum()

    with torch.enable_grad():
        g = [torch.zeros_like(w) for w in weights]
        for batch in ctx.batches:
            for acc, gb in zip(g, torch.autograd.grad(loss(batch), weights), strict=True):
                acc += gb
        hg = [torch.zeros_like(w) for w in weights]
        for batch in ctx.batches:
            grads = torch.autograd.grad(loss(batch), weights, create_graph=True)
            z = sum((gb * gf).sum() for gb, gf in zip(g, grads, strict=True))
            parts = torch.autograd.grad(z, weights, allow_unused=True)
            for acc, part in zip(hg, parts, strict=True):
                if part is not None:  # a layer the gradient does not depend on
                    acc += part
    return hg


def synflow_scores(ctx: ScoreContext) -> list[Tensor]:
    """SynFlow's |∂R/∂θ ⊙ θ| of the pruned layers, R the summed logits of an all-ones input
    through the network with every weight replaced by |w| · mask.

    In float64: R is a product of the layers' weight sums and overflows float32 on deep or
    wide nets. With non-negative weights and input no ReLU ever cuts, so ``forward`` is it."""
    linear = [(w.detach().to(torch.float64).abs() * m).requires_grad_(True)
              for w, m in zip(ctx.weights, ctx.masks, strict=True)]  # fmt: skip
    ones = torch.ones(1, linear[0].shape[2], dtype=torch.float64, device=linear[0].device)
    with torch.enable_grad():
        logits, _ = forward(linear, ctx.masks, ones)
        grads = torch.autograd.grad(logits.sum(), linear)
    return [(grads[i] * linear[i]).abs().to(ctx.weights[i].dtype) for i in ctx.pruned]


# ------------------------------------------------------------------ data-driven criteria


@CRITERIA.register("snip")
class SNIP(Criterion):
    """SNIP (Lee et al. 2019, "SNIP: single-shot network pruning based on connection
    sensitivity"): |w ⊙ ∂L/∂w|, the gradient averaged over the batches.

    SNIP's sensitivity is |∂L/∂c| for a multiplicative gate c = 1 on each weight; since the
    net computes with w · c, ∂L/∂c = w ⊙ ∂L/∂w, so no gate variables are needed. The paper
    uses one batch; averaging the gradient (before the absolute value) over several batches
    estimates the same expected gradient with less noise. Masked-out weights score 0."""

    needs_data = True

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        require_batches(ctx, "snip")
        grads = mean_gradients(ctx)
        return [(w * g).abs() for w, g in zip(ctx.pruned_weights(), grads, strict=True)]


def dense_gradients(ctx: ScoreContext) -> list[Tensor]:
    """d(loss)/d(w · mask) of each pruned layer averaged over ``ctx.batches``: the gradient
    the net would give every weight, dead ones included, if all were live (RigL's "dense
    gradient"). Taken with respect to the masked weights themselves, so a dead weight, 0,
    gets the gradient it would have at 0 instead of the 0 the mask's product gives it."""
    live = [(w * m).detach().clone().requires_grad_(True)
            for w, m in zip(ctx.weights, ctx.masks, strict=True)]  # fmt: skip
    ones = [torch.ones_like(m, dtype=torch.bool) for m in ctx.masks]
    sums = [torch.zeros_like(live[i]) for i in ctx.pruned]
    with torch.enable_grad():
        for x, y in ctx.batches:
            logits, _ = forward(live, ones, x)
            grads = torch.autograd.grad(member_losses(logits, y).sum(), live)
            for acc, i in zip(sums, ctx.pruned, strict=True):
                acc += grads[i]
    return [acc / len(ctx.batches) for acc in sums]


@CRITERIA.register("gradient")
class DenseGradient(Criterion):
    """|∂L/∂w| of the dense gradient (``dense_gradients``): how fast the loss would fall if
    a weight, live or dead, moved. RigL's growth score (Evci et al. 2020); as a pruning
    score it keeps the weights the loss is most sensitive to right now."""

    needs_data = True

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        require_batches(ctx, "gradient")
        return [g.abs() for g in dense_gradients(ctx)]


@CRITERIA.register("grasp")
class GraSP(Criterion):
    """GraSP (Wang et al. 2020, "Picking winning tickets before training by preserving
    gradient flow"): θ ⊙ Hg, H the Hessian of the loss and g its gradient.

    As the official code (github alecwangcq/GraSP, ``pruner/GraSP.py``) computes it: logits
    divided by a temperature T = 200 (the soft-max is otherwise saturated and Hg tiny),
    g = Σ_b ∇L_b detached, Hg = ∇(Σ_b ∇L_b · g) by a Hessian-vector product. Sign: that code
    stores ``-layer.weight.data * layer.weight.grad`` (−θ ⊙ Hg), takes the ``topk`` largest
    of these scores as the weights to remove and keeps ``score <= threshold``; removing a
    weight with large −θHg is the one that least reduces (most increases) the gradient norm.
    Higher = keep here, so the score is +θ ⊙ Hg (negative scores are pruned first). Unlike
    that code, the layers are not re-initialised (Xavier) before scoring and the per-stack
    normalisation by |Σ scores| (a positive factor, no change of order) is left out."""

    needs_data = True
    temperature: ClassVar[float] = 200.0

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        require_batches(ctx, "grasp")
        hg = grasp_hessian_gradient(ctx, self.temperature)
        return [ctx.weights[i] * hg[i] for i in ctx.pruned]


@CRITERIA.register("taylor")
class Taylor(Criterion):
    """First-order Taylor importance of each weight (Molchanov et al. 2019, "Importance
    estimation for neural network pruning"): the mean over batches of (g_b ⊙ w)², g_b the
    loss gradient on batch b.

    (g ⊙ w)² is the squared first-order change of the loss when w is set to 0; it is
    squared per batch before averaging (as the paper accumulates it over mini-batches), so
    batches whose gradients disagree in sign do not cancel as in SNIP's averaged gradient."""

    needs_data = True

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        require_batches(ctx, "taylor")
        per_batch = batch_gradients(ctx)
        return [torch.stack([(g * w).square() for g in layer]).mean(dim=0)
                for w, layer in zip(ctx.pruned_weights(), zip(*per_batch, strict=True),
                                    strict=True)]  # fmt: skip


@CRITERIA.register("taylor_unit")
class TaylorUnit(Criterion):
    """Group Taylor importance of a unit (Molchanov et al. 2019): the mean over batches of
    (Σ over the unit's incoming weights of g_b ⊙ w)².

    The first-order change of the loss when the whole row is removed is the sum of its
    weights' terms. For a bias-free ReLU unit that sum equals a · ∂L/∂a summed over the
    batch (its pre-activation is homogeneous in the row), so this is also Molchanov et al.
    2017's activation-times-gradient criterion, squared per batch instead of |·|."""

    unit = True
    needs_data = True

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        require_batches(ctx, "taylor_unit")
        per_batch = batch_gradients(ctx)
        return [torch.stack([(g * w).sum(dim=2).square() for g in layer]).mean(dim=0)
                for w, layer in zip(ctx.pruned_weights(), zip(*per_batch, strict=True),
                                    strict=True)]  # fmt: skip


@CRITERIA.register("activation")
class Activation(Criterion):
    """A unit's mean output over the samples of the batches: after the ReLU for a hidden
    unit, |logit| for an output unit (if the output layer is pruned).

    A unit that is rarely and weakly active contributes little to the next layer (the
    classic activation-magnitude criterion). Hidden outputs are ≥ 0, so |output| serves
    both cases."""

    unit = True
    needs_data = True

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        require_batches(ctx, "activation")
        return unit_means(ctx, torch.abs)


@CRITERIA.register("apoz")
class APoZ(Criterion):
    """1 − APoZ (Hu et al. 2016, "Network trimming: a data-driven neuron pruning approach"):
    the fraction of samples on which the unit's output after the ReLU is positive (for an
    output unit, its logit is non-zero).

    Network Trimming removes the units with the largest Average Percentage of Zeros; higher
    = keep here, hence its complement. Hidden outputs are ≥ 0, so "≠ 0" serves both cases."""

    unit = True
    needs_data = True

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        require_batches(ctx, "apoz")
        return unit_means(ctx, lambda out: out != 0)


@CRITERIA.register("activation_out")
class ActivationOut(Criterion):
    """A unit's mean activation (``activation``) times the L2 norm of its outgoing weights
    (its column of the next layer's masked weight); an output unit's is its mean |logit|.

    What a unit passes on is its activation scaled by its outgoing weights, so this
    measures its contribution downstream; on this MLP it beats the L2 norm of the incoming
    weights (``unit_l2``) in our own measurements."""

    unit = True
    needs_data = True

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        require_batches(ctx, "activation_out")
        means = unit_means(ctx, torch.abs)
        eff = masked_weights(ctx)
        last = len(ctx.weights) - 1
        return [mean if i == last else mean * eff[i + 1].norm(dim=1)
                for i, mean in zip(ctx.pruned, means, strict=True)]  # fmt: skip


# ------------------------------------------------------------------ data-free criteria


@CRITERIA.register("synflow")
class SynFlow(Criterion):
    """SynFlow (Tanaka et al. 2020, "Pruning neural networks without any data by iteratively
    conserving synaptic flow"): |θ ⊙ ∂R/∂θ| with R = 1ᵀ(Π_l |W_l|)1, the summed logits of an
    all-ones input through the network of absolute weights.

    Data-free, so no data can favour any layer; the absolute weights and positive input
    keep every ReLU open, so R is the summed product of weights over every input-output path
    and each weight's score is the flow of the paths through it. The paper's Theorem makes
    every layer's scores sum to R: one shot would score a large layer's weights lowest and
    prune it hardest. Pruned over 100 rounds on an exponential density path
    (``selection.select_masks``), each re-scored with the new masks, a layer's survivors
    gain score as it thins, which avoids cutting a layer off (layer collapse)."""

    rounds = 100

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        return synflow_scores(ctx)


@CRITERIA.register("lamp")
class LAMP(Criterion):
    """LAMP (Lee et al. 2021, "Layer-adaptive sparsity for the magnitude-based pruning"):
    w² over the sum of w'² of the weights of its layer at least as large (``lamp_scores``).

    A rescaled magnitude: within a layer it orders as |w|, across layers it is comparable
    (each layer's largest scores 1), so with the ``global`` allocation it chooses how many
    weights each layer keeps. Of the masked weights: pruned ones count as 0."""

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        eff = masked_weights(ctx)
        return [lamp_scores(eff[i]) for i in ctx.pruned]

"""Pruning criteria: how important each weight (or unit) of a layer is, for every member.

A criterion is one small class in ``CRITERIA``: ``scores(ctx)`` returns one tensor per
pruned layer, of its weight's shape with a member axis in front ((M, out, in) for a linear
layer, (M, out, in, kh, kw) for a conv) for weight scores, or (M, out) for unit scores (a
unit is a row of ``linear.weight``, an output channel of a conv), where a *higher* score
means *keep*. It declares what it needs and the
pruning callback hands exactly that over in a ``ScoreContext``: the weights and masks of every
layer, each member's random generator, and, when ``needs_data`` is set, a few training
batches. Which scores are removed, and how many per layer, is not the criterion's business
(``allocation``); ``pruning.select_masks`` joins the two, batched over the member axis, so a
member's mask never depends on the other members of its stack.

The data-driven criteria run the model's own forward and backward passes on copies of the
weights (``scoring``): they never touch the module's gradients or the optimizer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from prunelab.lazy import lazy_import
from prunelab.registry import Registry
from prunelab.scoring import Batch as Batch
from prunelab.scoring import Network as Network
from prunelab.scoring import ScoreContext as ScoreContext
from prunelab.scoring import (
    batch_gradients,
    dense_gradients,
    grasp_hessian_gradient,
    masked_weights,
    mean_gradients,
    outgoing_norm,
    require_batches,
    synflow_scores,
    unit_means,
)
from prunelab.scoring import lamp_scores as lamp_scores
from prunelab.scoring import random_scores as random_scores

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_import("torch", __name__, "torch")


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
        return [w.flatten(2).norm(dim=2) for w in ctx.pruned_weights()]


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
        return [torch.stack([(g * w).flatten(2).sum(dim=2).square() for g in layer]).mean(dim=0)
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
        eff, graph = masked_weights(ctx), ctx.graph
        return [mean if (c := graph.feeds[i]) is None
                else mean * outgoing_norm(eff[c], graph.repeat[i])
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

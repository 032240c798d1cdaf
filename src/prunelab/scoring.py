"""What a criterion reads (``ScoreContext``) and how it runs the network it scores.

The data-driven criteria (SNIP, GraSP, Taylor, activation, RigL's gradient) and SynFlow run
their own forward and backward passes on copies of the weights, never touching the module's
gradients or the optimizer. They run the *model's own* stacked forward (``Network``), so a
score means the same on the challenge MLP, a conv net or a user's module: the MLP's is
``mlp_forward`` (``functional.stacked_linear``, the arithmetic ``nets.StackedLayer`` trains
with), any other model's is its ``stack.StackedNet.network()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prunelab.functional import member_losses, stacked_linear
from prunelab.graph import LayerGraph
from prunelab.lazy import lazy_import

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_import("torch", __name__, "torch")
F = lazy_import("torch.nn.functional", __name__, "F")

Batch = tuple["Tensor", "Tensor"]  # (x, y); x (B, in) shared or (M, B, in), flat features
# (weights, masks, x, extras) → (logits (M, B, C), each hidden layer's ReLU output); ``extras``
# maps the model's other parameters (biases) before use (SynFlow: |·| in float64)
Forward = Callable[..., tuple["Tensor", list["Tensor"]]]
Tensors = Sequence["Tensor"]
Extras = Callable[["Tensor"], "Tensor"] | None  # how a model's other parameters are mapped
Outputs = tuple["Tensor", list["Tensor"]]  # logits and each hidden layer's ReLU output


@dataclass(frozen=True)
class Network:
    """How to run a stacked model with given prunable weights: its ``forward``
    (``Forward``), the ``graph`` of its prunable layers and its flat input size."""

    forward: Forward
    graph: LayerGraph
    inputs: int


@dataclass
class ScoreContext:
    """What a criterion may read. Tensors are detached; every list of weights or masks
    covers *all* prunable layers (the criteria that run the network need them), ``pruned``
    says which are being pruned, in order. ``batches`` is empty unless the criterion
    ``needs_data``; each is (x, y) with x (B, in) shared by the members or (M, B, in), one
    slice per member. ``network`` runs the model (None: the MLP these weights make)."""

    weights: list[Tensor]
    masks: list[Tensor]
    pruned: list[int]
    gens: list[torch.Generator]
    batches: list[Batch] = field(default_factory=list)
    network: Network | None = None

    @property
    def members(self) -> int:
        return int(self.weights[0].shape[0])

    @property
    def graph(self) -> LayerGraph:
        return LayerGraph.chain(len(self.weights)) if self.network is None else self.network.graph

    @property
    def inputs(self) -> int:
        """Features of one flat input sample."""
        return int(self.weights[0].shape[2]) if self.network is None else self.network.inputs

    def run(self, weights: Tensors, masks: Tensors, x: Tensor, extras: Extras = None) -> Outputs:
        """The model on ``x`` with these weights and masks (``Forward``)."""
        if self.network is None:
            return mlp_forward(weights, masks, x)
        return self.network.forward(weights, masks, x, extras)

    def pruned_weights(self) -> list[Tensor]:
        return [self.weights[i] for i in self.pruned]

    def pruned_masks(self) -> list[Tensor]:
        return [self.masks[i] for i in self.pruned]


def random_scores(shape: tuple[int, ...], like: Tensor, gens: Sequence[torch.Generator]) -> Tensor:
    """Uniform scores, member i's from its own generator: its draws do not depend on the
    stack it trains in. Drawn on the CPU (the same numbers on every device)."""
    return torch.stack([torch.rand(shape, generator=g, device="cpu") for g in gens]).to(
        device=like.device, dtype=like.dtype if like.is_floating_point() else torch.float32
    )


def mlp_forward(
    weights: Sequence[Tensor], masks: Sequence[Tensor], x: Tensor, extras: object = None
) -> tuple[Tensor, list[Tensor]]:
    """The stacked MLP on ``x`` ((B, in) shared, or (M, B, in)) with these weights and masks:
    logits (M, B, classes) and each hidden layer's output after its ReLU, (M, B, out); the
    MLP has no other parameters, so ``extras`` is not used (``Forward``).

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
        logits, _ = ctx.run(weights, ctx.masks, batch[0])
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
    for the output layer), averaged over every sample of ``ctx.batches`` (and over the
    output positions of a conv channel): (M, out) per layer.

    Averaged per sample, not per batch, so batches of unequal size weigh by their samples."""
    totals: list[Tensor] = []
    count = 0
    with torch.no_grad():
        for x, _ in ctx.batches:
            logits, hidden = ctx.run(ctx.weights, ctx.masks, x)
            outs = [*hidden, logits]
            sums = [per_unit(stat(outs[i]).to(ctx.weights[i].dtype).sum(dim=1)) for i in ctx.pruned]
            totals = sums if not totals else [t + s for t, s in zip(totals, sums, strict=True)]
            count += int(logits.shape[1])
    return [t / count for t in totals]


def per_unit(sums: Tensor) -> Tensor:
    """(M, out) as it is; (M, channels, H, W) averaged over the positions of a channel."""
    return sums if sums.dim() == 2 else sums.flatten(2).mean(dim=2)


def outgoing_norm(consumer: Tensor, repeat: int) -> Tensor:
    """The L2 norm of each input unit's weights in the (masked) weight ``consumer`` of the
    layer it feeds, (M, units): a column of a linear weight, ``repeat`` columns where a
    conv channel was flattened into it, every kernel weight of an input channel of a conv."""
    if consumer.dim() == 3 and repeat == 1:
        return consumer.norm(dim=1)
    m, out, cols = consumer.shape[:3]
    grouped = consumer.reshape(m, out, cols // repeat, -1)
    return torch.linalg.vector_norm(grouped, dim=(1, 3))


def grasp_hessian_gradient(ctx: ScoreContext, temperature: float) -> list[Tensor]:
    """Hg of every layer, GraSP's way: g = Σ_b ∇L_b (detached), then the gradient of
    z = Σ_b ∇L_b · g, with L_b the loss of batch b on logits divided by ``temperature``.

    All members at once: z summed over the members is a sum of functions of disjoint
    weights, so its gradient in member i's weights is member i's own H_i g_i. One batch's
    double-backward graph at a time (the official code calls ``z.backward()`` per batch)."""
    weights = [w.detach().clone().requires_grad_(True) for w in ctx.weights]

    def loss(batch: Batch) -> Tensor:
        logits, _ = ctx.run(weights, ctx.masks, batch[0])
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
    through the network with every weight replaced by |w| · mask (and every other
    parameter, a bias, by its |·|, as the official code linearises the whole state).

    In float64: R is a product of the layers' weight sums and overflows float32 on deep or
    wide nets. With non-negative weights and input no ReLU ever cuts (and a max-pool picks
    among non-negative values), so the model's own forward is the linearised network."""
    linear = [(w.detach().to(torch.float64).abs() * m).requires_grad_(True)
              for w, m in zip(ctx.weights, ctx.masks, strict=True)]  # fmt: skip
    ones = torch.ones(1, ctx.inputs, dtype=torch.float64, device=linear[0].device)
    with torch.enable_grad():
        logits, _ = ctx.run(linear, ctx.masks, ones, lambda t: t.detach().to(torch.float64).abs())
        grads = torch.autograd.grad(logits.sum(), linear)
    return [(grads[i] * linear[i]).abs().to(ctx.weights[i].dtype) for i in ctx.pruned]


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
            logits, _ = ctx.run(live, ones, x)
            grads = torch.autograd.grad(member_losses(logits, y).sum(), live)
            for acc, i in zip(sums, ctx.pruned, strict=True):
                acc += grads[i]
    return [acc / len(ctx.batches) for acc in sums]

"""Selection: a criterion's scores and an allocation's counts made into keep-masks.

A ``Method`` is what a strategy resolves to (``strategy.criterion`` + ``strategy.allocation``
+ ``strategy.shuffle``); ``select_masks`` applies it to every member of a stack at once: score
(``criteria``), count per layer (``allocation``), drop that many of each layer's lowest
scores (``pruning.smallest_masks``), broadcast unit masks over their rows. A criterion with
several ``rounds`` repeats this on a geometric path of densities, each round re-scored with
the masks of the one before (SynFlow's iterative pruning).

``shuffle`` is the layerwise-shuffle control of Frankle et al. (2021, "Pruning neural
networks at initialization: why are we missing the mark?"): the method chooses how many
weights each layer keeps, then their positions are drawn at random, which asks whether a
method knows *which* weights matter or only *how many* per layer.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from prunelab.allocation import ALLOCATIONS, Allocation
from prunelab.criteria import CRITERIA, Batch, Criterion, Network, ScoreContext, random_scores
from prunelab.lazy import lazy_import
from prunelab.pruning import Sparsity, smallest_masks
from prunelab.streams import seed_for

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_import("torch", __name__, "torch")


@dataclass(frozen=True)
class Method:
    """A criterion and an allocation, instantiated, and whether to shuffle within layers."""

    criterion: Criterion
    allocation: Allocation
    shuffle: bool = False

    @property
    def needs_data(self) -> bool:
        return self.criterion.needs_data


@functools.lru_cache(maxsize=64)
def method(criterion: str, allocation: str = "uniform", shuffle: bool = False) -> Method:
    """The ``Method`` of registry names (or ``package.module:Name`` import paths); one
    instance per triple, so the members of a stack that share a method share one selection."""
    return Method(CRITERIA.get(criterion)(), ALLOCATIONS.get(allocation)(), shuffle)


def round_sparsity(k: Sparsity, fraction: float) -> Sparsity:
    """The sparsity after ``fraction`` of the rounds: density (1 − k) ** fraction."""
    if isinstance(k, (int, float)):
        return 1.0 - (1.0 - float(k)) ** fraction
    return [1.0 - (1.0 - float(x)) ** fraction for x in k]


def select_masks(m: Method, ctx: ScoreContext, ks: Sequence[Sparsity]) -> list[Tensor]:
    """Keep-masks (M, out, in, …) of the pruned layers of ``ctx``, member i at ``ks[i]``.
    A unit criterion on a layer whose units feed a sum is refused (``LayerGraph``)."""
    if m.criterion.unit and (problem := ctx.graph.unit_problem(ctx.pruned)):
        raise ValueError(f"{problem}; prune its weights instead (a weight criterion)")
    rounds = m.criterion.rounds
    masks = list(ctx.masks)
    for r in range(1, rounds + 1):
        ks_r = list(ks) if r == rounds else [round_sparsity(k, r / rounds) for k in ks]
        new = select_once(m, replace(ctx, masks=masks), ks_r)
        for i, mask in zip(ctx.pruned, new, strict=True):
            masks[i] = mask
    return [masks[i] for i in ctx.pruned]


def select_once(m: Method, ctx: ScoreContext, ks: Sequence[Sparsity]) -> list[Tensor]:
    """One round of ``select_masks``."""
    scores = [
        below_all_kept(s, mask)
        for s, mask in zip(m.criterion.scores(ctx), ctx.pruned_masks(), strict=True)
    ]
    flat = [s.reshape(len(s), -1) for s in scores]
    counts = m.allocation.counts(flat, ctx, ks)
    if m.shuffle:  # the same counts, at random places among the live weights (or units)
        drawn = [random_scores(tuple(s.shape[1:]), s, ctx.gens) for s in scores]
        flat = [below_all_kept(d, mask).reshape(len(d), -1)
                for d, mask in zip(drawn, ctx.pruned_masks(), strict=True)]  # fmt: skip
    out = []
    for s, f, n_drop, w in zip(scores, flat, counts, ctx.pruned_weights(), strict=True):
        keep = smallest_masks(f, n_drop).reshape(s.shape)
        if keep.dim() == 2:  # unit scores: a unit's whole row (a conv's whole filter)
            keep = keep.reshape(*keep.shape, *[1] * (w.dim() - 2)).expand(w.shape)
        out.append(keep.to(device=w.device).clone())
    return out


def below_all_kept(scores: Tensor, mask: Tensor) -> Tensor:
    """``scores`` with every weight (or unit: every row) the masks already remove put below
    all others, so a prune never brings one back while a live one goes: a weight that is
    masked is 0, and a criterion that can score a live weight below 0 (GraSP) would
    otherwise rank the dead one above it. Nothing changes where every mask is lifted."""
    dead = ~mask if scores.dim() > 2 else ~mask.flatten(2).any(dim=2)
    if not bool(dead.any()):
        return scores
    return scores.masked_fill(dead.to(scores.device), float("-inf"))


def drawn_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """Each member's ``mask`` stream (``streams.seed_for``), fresh for every prune event.

    Not the run's seed itself: ``torch.rand`` of a layer's shape from that would replay the
    draws that initialised it, and a "random" mask would remove exactly the most negative
    initial weights (docs/results/index.md, "A trap we fell into")."""
    return [torch.Generator().manual_seed(seed_for(seed, "mask")) for seed in seeds]


def stacked_masks(
    m: Method,
    weights: Sequence[Tensor],
    ks: Sequence[Sparsity],
    seeds: Sequence[int],
    masks: Sequence[Tensor] | None = None,
    pruned: Sequence[int] | None = None,
    batches: Sequence[Batch] = (),
    network: Network | None = None,
) -> list[Tensor]:
    """Keep-masks of M members at once: ``weights`` (M, out, in, …) of every layer (and
    their current ``masks``, default all kept), the layers ``pruned`` (default all), member
    i at ``ks[i]`` in [0, 1) (one value, or one per pruned layer), its random draws from
    ``seeds[i]``'s mask stream, ``batches`` for a criterion that needs data, and the
    ``network`` the weights belong to (None: the MLP they make)."""
    masks = [torch.ones_like(w, dtype=torch.bool) for w in weights] if masks is None else masks
    ctx = ScoreContext(
        weights=[w.detach() for w in weights],
        masks=list(masks),
        pruned=list(range(len(weights))) if pruned is None else list(pruned),
        gens=drawn_generators(seeds),
        batches=list(batches),
        network=network,
    )
    return select_masks(m, ctx, ks)


def compute_masks(m: Method, weights: Sequence[Tensor], k: Sparsity, seed: int = 0) -> list[Tensor]:
    """Keep-masks for one model's ``weights`` (every one of them pruned) at sparsity ``k``;
    ``stacked_masks`` for a stack of one."""
    return [mask[0] for mask in stacked_masks(m, [w[None] for w in weights], [k], [seed])]

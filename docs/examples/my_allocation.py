"""An allocation of your own: k in every pruned layer but the last, which loses half as much.

A criterion says which items of a layer matter most; an allocation says how many items each
pruned layer loses for each member's sparsity k. ``counts`` returns, for every pruned layer,
one count per member of the stack; prunelab then drops that many of the layer's lowest
scores.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from prunelab.allocation import Allocation, Counts
from prunelab.pruning import Sparsity, layer_k, n_to_prune
from prunelab.scoring import ScoreContext


class LastLayerHalf(Allocation):
    """k of the items of each pruned layer, k/2 of the last pruned layer's."""

    def counts(self, scores: Sequence[Tensor], ctx: ScoreContext, ks: Sequence[Sparsity]) -> Counts:
        # scores: one (M, n_l) tensor per pruned layer (weights or units, flattened);
        # ks: one sparsity per member (layer_k reads a per-layer list too).
        last = len(scores) - 1
        return [
            [n_to_prune(s.shape[1], layer_k(k, layer) / (2 if layer == last else 1)) for k in ks]
            for layer, s in enumerate(scores)
        ]

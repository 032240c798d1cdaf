"""A unit criterion of your own: keep the units whose largest incoming weight is largest.

prunelab asks a criterion for one score per weight, or per unit (``unit = True``), in each
pruned layer; a higher score means *keep*. This one scores a unit (a row of a linear layer's
weight, an output channel of a conv) by the L-infinity norm of its incoming weights.
"""

from __future__ import annotations

from torch import Tensor

from prunelab.criteria import Criterion, ScoreContext


class UnitLinf(Criterion):
    """Units by the largest |w| among their incoming weights (higher = kept)."""

    unit = True  # one score per unit; leave False for one score per weight

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        # ctx.pruned_weights(): one tensor per pruned layer, with the members of a stack in
        # front: (M, out, in) for a linear layer, (M, out, in, kh, kw) for a conv.
        # A unit score is (M, out).
        return [w.abs().flatten(2).amax(dim=2) for w in ctx.pruned_weights()]

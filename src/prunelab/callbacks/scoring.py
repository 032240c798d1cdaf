"""The training batches a data-driven criterion scores on at a prune event (SNIP, GraSP,
Taylor…, and RigL's gradient growth): a few batches of each member's own ``score`` stream
(``data.scoring_batches``), drawn from the run's training loader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prunelab.criteria import Batch
from prunelab.data import BatchLoader, scoring_batches


@dataclass
class ScoringData:
    """Where scoring batches come from: the members' ``seeds``, how many batches of how many
    images, and the training ``loader`` (handed over once the trainer placed the data)."""

    seeds: Sequence[int]
    batches: int = 1
    batch_size: int = 100
    loader: BatchLoader | None = field(default=None)

    def draw(self, event: int) -> list[Batch]:
        """The batches of prune event ``event``; x is (M, B, in) over *all* members when
        seeds differ."""
        if self.loader is None:
            raise RuntimeError("a criterion needs data but the callback was given no loader")
        return scoring_batches(self.loader.x, self.loader.y, self.seeds, event,
                               self.batches, self.batch_size)  # fmt: skip

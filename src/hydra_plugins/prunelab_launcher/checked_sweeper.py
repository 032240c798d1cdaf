"""``hydra/sweeper=checked`` (the default): Hydra's basic sweeper without its second check.

``python -m prunelab.train -m …`` checks every job of a sweep before Hydra starts
(``prunelab.config.check_argv``: each job composed, typed, range-checked, its folder
compared with what it holds), composing once per set of group choices. The basic sweeper
then composes every job of a batch once more only to see that it composes, which the
launcher does a third time to run it: 0.07 s a job, 4 s of the challenge's 60. This sweeper
expands and batches the jobs exactly as the basic one does and skips that repeat. Kept free
of heavy imports: Hydra imports every plugin at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper


class CheckedSweeper(BasicSweeper):
    """``BasicSweeper`` whose batches were checked by ``prunelab.config.check_argv``."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Nothing to do: every job was composed and checked before Hydra started."""

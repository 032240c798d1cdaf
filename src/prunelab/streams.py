"""Every random stream of a run, derived from ``(seed, purpose, index…)`` in one place.

A run's seed must not feed two streams directly. Two traps of this project's history show
why: a random mask seeded with the run's seed replayed the draws that had initialised the
weights (the "random" control removed exactly the most negative initial weights), and a batch
order seeded with ``seed + epoch`` made seed 1's epoch 0 the same batches as seed 0's epoch 1,
so the "independent" seeds of every mean ± std shared most of their batch orders.

``seed_for`` mixes the seed, the purpose and any indices (the epoch of a batch order) with
numpy's ``SeedSequence``, whose output is well spread whatever the inputs: different inputs
give unrelated streams, and no arithmetic relation between seeds and epochs can make two of
them meet. The purposes a run uses are the ``PURPOSES`` below; a new one is a new name.
"""

from __future__ import annotations

import numpy as np

# init: the network's initial weights; batches: the training batch order of one epoch;
# mask: the random controls' scores; reinit: the lottery control's fresh initial weights;
# score: the training images a data-driven criterion scores on at one prune event;
# grow: SET's random growth scores at one topology update (dst.update_topology);
# augment: the random crops and flips of one epoch's training images (data.augment).
PURPOSES = ("init", "batches", "mask", "reinit", "score", "grow", "augment")


def seed_for(seed: int, purpose: str, *index: int) -> int:
    """A 32-bit seed for run ``seed``'s stream ``purpose`` (one of ``PURPOSES``), item
    ``index`` (e.g. the epoch of a batch order).

    The purpose enters as the integer of its ASCII bytes, so ``mask`` and ``reinit`` keep
    the streams they had before this helper existed (``0x6D61736B``, ``0x7265696E`` for
    ``rein``). The number of indices enters too: ``SeedSequence`` ignores trailing zeros, so
    without it epoch 0 of a stream would be the stream without an epoch.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream {purpose!r}; add it to streams.PURPOSES")
    code = int.from_bytes(purpose[:4].encode("ascii"), "big")
    if seed < 0 or any(i < 0 for i in index):
        raise ValueError(f"seeds and indices of random streams are ≥ 0, got {seed}, {index}")
    entropy = [seed, code, len(index), *index]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])

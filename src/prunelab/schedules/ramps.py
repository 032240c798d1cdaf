"""When to prune, and to what sparsity: pure functions of the optimizer step.

Every schedule trains dense for ``epochs`` epochs, then prunes during a window of
``ramp_epochs`` epochs, then fine-tunes ``finetune_epochs`` epochs with the masks fixed:

- ``oneshot``: no window; k at once;
- ``gradual``: Zhu & Gupta's (2017) cubic ramp from 0 to k over the window, masks recomputed
  every ``prune_every_steps`` steps (``GradualSchedule.steps_between_prunes``);
- ``iterative``: the original challenge's "train with pruning": every epoch of the window
  trains all weights (pruned ones regrow from 0), then prunes back to k at its last step, so
  each epoch's evaluation sees a model at exactly k;
- ``lottery``: one-shot, then the surviving weights are rewound to an earlier epoch's values
  and retrained (``callbacks.rewind``, ``module.lr_factor``);
- ``init``, ``set``, ``rigl``: no dense phase: pruned before the first step; ``set`` and
  ``rigl`` then move part of the live weights every ΔT steps, a share that decays by
  ``cosine_fraction`` (``dst``).

Their settings, and what follows from them (total epochs, the learning rate's horizon), are
the schedule classes of this package, which call these. Those with a dense phase start
from the same one, so the dense cache serves them all (iterative's learning rate decays
over its window too, which the cache key includes).
"""

from __future__ import annotations

import math


def cubic_ramp(step: int, start: int, end: int, k: float) -> float:
    """Zhu & Gupta's sparsity at ``step``: ``k · (1 - (1 - (step - start)/(end - start))³)``.

    0 at ``start``, k at ``end``, fast at first while many weights are redundant, then slower
    as each removal hurts more; clamped outside the window.
    """
    if step <= start:
        return 0.0
    if step >= end:
        return k
    return k * (1.0 - (1.0 - (step - start) / (end - start)) ** 3)


def target_sparsity(
    step: int,
    steps_per_epoch: int,
    k: float,
    dense_epochs: int,
    ramp_epochs: int = 0,
    prune_every_steps: int = 1,
) -> float | None:
    """The sparsity masks should have from ``step`` on, or None while training is dense.

    Changes only on a pruning step (every ``prune_every_steps`` within the ramp), so the
    caller recomputes masks only when this value changes.
    """
    start = dense_epochs * steps_per_epoch
    if step < start:
        return None
    end = start + ramp_epochs * steps_per_epoch
    if step >= end:
        return k
    last_pruning_step = start + (step - start) // prune_every_steps * prune_every_steps
    return cubic_ramp(last_pruning_step, start, end, k) or None


def iterative_prunes_after(
    steps_done: int, steps_per_epoch: int, dense_epochs: int, window_epochs: int
) -> bool:
    """Iterative: whether masks are recomputed at k once ``steps_done`` steps are done.

    True at the end of each epoch of the window, so validation (which Lightning runs after
    the last step of an epoch) always sees the model at exactly k.
    """
    start = dense_epochs * steps_per_epoch
    end = start + window_epochs * steps_per_epoch
    return start < steps_done <= end and steps_done % steps_per_epoch == 0


def iterative_releases_at(
    step: int, steps_per_epoch: int, dense_epochs: int, window_epochs: int
) -> bool:
    """Iterative: whether the masks are lifted before ``step`` (every window epoch but the
    first), so that pruned weights, now 0, get gradients again and may grow back."""
    start = dense_epochs * steps_per_epoch
    end = start + window_epochs * steps_per_epoch
    return start < step < end and step % steps_per_epoch == 0


def cosine_fraction(step: int, end_step: int, fraction: float) -> float:
    """The drop fraction at ``step``: ``fraction`` decayed by a half cosine to 0 at
    ``end_step`` (RigL's ``drop_fraction_anneal='cosine'``), so the topology settles before
    training ends and the last epochs fine-tune a fixed mask."""
    if step >= end_step:
        return 0.0
    return fraction * 0.5 * (1.0 + math.cos(math.pi * step / end_step))

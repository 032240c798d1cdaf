"""When to prune, and to what sparsity: pure functions of the optimizer step.

- ``oneshot``: dense for ``epochs``, then k at once (optionally fine-tuned with masks fixed);
- ``gradual``: dense for ``epochs``, then Zhu & Gupta's (2017) cubic ramp from 0 to k over
  ``ramp_epochs``, masks recomputed every ``prune_every_steps`` steps, then fine-tuning.

Both start from the same dense phase, so the dense cache serves every schedule.
"""

from __future__ import annotations

SCHEDULES = ("oneshot", "gradual")


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

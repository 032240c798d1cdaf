"""Plug-ins defined outside ``src/``: a criterion, a schedule and a dataset that
``tests/test_plugins.py`` selects from the command line (through the YAML files of
``tests/plugin_conf``, added to Hydra's search path), to prove that a new method needs no
edit to prunelab itself. Not collected by pytest (no ``test_`` prefix)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from prunelab.criteria import Criterion, ScoreContext
from prunelab.data import DatasetSpec, RawDataset
from prunelab.schedules import Schedule, setting


class UnitL1(Criterion):
    """Units by the L1 norm of their incoming weights (higher = kept)."""

    unit = True

    def scores(self, ctx: ScoreContext) -> list[Tensor]:
        return [w.abs().sum(dim=2) for w in ctx.pruned_weights()]


@dataclass
class HalfThenFull(Schedule):
    """Train dense for `epochs`, prune to half of `sparsity`, train `step_epochs` more, prune
    to `sparsity`, then fine-tune."""

    KIND: ClassVar[str] = "half_then_full"
    step_epochs: int = setting(1, "epochs at half the sparsity", low=1)

    @property
    def window_epochs(self) -> int:
        return self.step_epochs

    def target(self, step: int, steps_per_epoch: int, k: float) -> float | None:
        start = self.epochs * steps_per_epoch
        if step < start:
            return None
        return k / 2 if step < start + self.step_epochs * steps_per_epoch else k


def make_blobs(data_dir: Path) -> RawDataset:
    """10 classes of noisy images around 10 fixed random prototypes: 10 500 training images
    (the last 10 000 are validation) and 500 test images, the same on every machine."""
    rng = np.random.default_rng(0)
    prototypes = rng.integers(0, 256, (10, 784))

    def draw(n: int) -> tuple[Tensor, Tensor]:
        y = rng.integers(0, 10, n)
        x = np.clip(prototypes[y] + rng.normal(0, 60, (n, 784)), 0, 255).astype(np.uint8)
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    train_x, train_y = draw(10_500)
    test_x, test_y = draw(500)
    return RawDataset("blobs", train_x, train_y, test_x, test_y, source="generated:blobs")


BLOBS = DatasetSpec("blobs", load=make_blobs)

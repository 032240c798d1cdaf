"""From a stored dataset to the float tensors a model trains on: normalised once, the
validation split taken off the end of the training file, each split optionally capped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prunelab.data.spec import RawDataset
from prunelab.errors import DataError
from prunelab.lazy import lazy_import

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_import("torch", __name__, "torch")

N_VAL = 10_000


@dataclass(frozen=True)
class Splits:
    """Float tensors ready for the model: train / val (last ``n_val`` of train) / test."""

    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    n_features: int
    n_classes: int


Stat = float | Sequence[float]


def per_feature(stat: Stat, n_features: int, device: str | torch.device = "cpu") -> float | Tensor:
    """A normalisation statistic as ``make_splits`` applies it: a number as it is (every
    pixel alike, MNIST's), a sequence (one per channel, CIFAR's) repeated over each channel's
    pixels, which lie together in a flat (C, H, W)-ordered sample."""
    if isinstance(stat, int | float):
        return float(stat)
    values = [float(v) for v in stat]
    if not values or n_features % len(values):
        raise DataError(
            f"{len(values)} per-channel statistics do not divide the {n_features} features of "
            "a sample; give one number, or one per channel"
        )
    return torch.tensor(values, device=device).repeat_interleave(n_features // len(values))


def make_splits(
    raw: RawDataset,
    mean: Stat,
    std: Stat,
    limit: int | None = None,
    device: str | torch.device = "cpu",
    n_val: int = N_VAL,
) -> Splits:
    """Normalise once, split off validation, and optionally cap each split at ``limit``.

    Validation is the *last* ``n_val`` (10k) of the training file, so train+val never overlap
    test and the split is the same on every machine (MNIST 50k/10k/10k, CIFAR-10 40k/10k/10k).
    ``mean`` and ``std`` are one number or one per channel (a tuple, so that the result can
    be cached by its arguments). ``limit`` is positive (``config.check``).
    """
    m, s = (per_feature(stat, raw.n_features, device) for stat in (mean, std))

    def prep(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if limit is not None:
            x, y = x[:limit], y[:limit]
        xf = (x.to(device=device, dtype=torch.float32) / 255.0 - m) / s
        return xf.contiguous(), y.to(device)

    n_train = len(raw.train_x) - n_val
    if n_train <= 0:
        raise DataError(f"{raw.name} has only {len(raw.train_x)} training images, need > {n_val}")
    return Splits(
        train=prep(raw.train_x[:n_train], raw.train_y[:n_train]),
        val=prep(raw.train_x[n_train:], raw.train_y[n_train:]),
        test=prep(raw.test_x, raw.test_y),
        n_features=raw.n_features,
        n_classes=raw.n_classes,
    )

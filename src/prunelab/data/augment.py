"""The usual CIFAR augmentation, on tensors: a random 32×32 crop of the image padded by 4
pixels, and a horizontal flip half of the time, each image its own, from a seeded generator
(so a run's augmented epochs are reproducible from its seed and epoch, ``loader``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prunelab.lazy import lazy_import

if TYPE_CHECKING:
    from torch import Generator, Tensor

torch = lazy_import("torch", __name__, "torch")


def augment_images(images: Tensor, gen: Generator, pad: int = 4) -> Tensor:
    """(B, C, H, W) images randomly cropped from their ``pad``-padded selves and flipped.

    The padding is zeros of the tensors given, the normalised ones (the data set's mean
    colour), as tensor-side augmentation does. Offsets and flips are drawn on the CPU from
    ``gen`` (the same on every device); one gather makes every crop and flip at once.
    """
    b, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    top = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    left = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    rows = top[:, None] + torch.arange(h)
    cols = left[:, None] + torch.where(flip[:, None], torch.arange(w - 1, -1, -1), torch.arange(w))
    rows, cols = rows.to(images.device), cols.to(images.device)
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    chan = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]

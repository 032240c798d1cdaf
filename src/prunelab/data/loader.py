"""Mini-batches by slicing tensors already in memory (or on the GPU), in orders drawn from
the run's random streams; as flat samples, or as images when a model reads images.

The whole dataset (70k × 784 bytes, or CIFAR-10's 60k × 3072) fits in memory many times over,
so there are no DataLoader workers: :class:`BatchLoader` slices tensors, which removes the
per-batch Python overhead a DataLoader adds (measured at ≈15 % of a 2-core CPU epoch at batch
128; with slicing, ``benchmarks/bench_overhead.py`` puts Lightning within a few % of a bare loop).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prunelab.data.augment import augment_images
from prunelab.lazy import lazy_import
from prunelab.streams import seed_for

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_import("torch", __name__, "torch")

ImageShape = tuple[int, int, int]


def as_images(x: Tensor, image_shape: ImageShape | None) -> Tensor:
    """Flat samples (..., C·H·W) seen as images (..., C, H, W), a view sharing their memory
    (samples are stored in (C, H, W) order, ``spec.RawDataset``); None leaves them flat."""
    if image_shape is None:
        return x
    return x.view(*x.shape[:-1], *image_shape)


def permutation(n: int, seed: int, purpose: str, index: int, device: str | torch.device) -> Tensor:
    """A permutation of ``range(n)`` from run ``seed``'s stream ``purpose``, item ``index``
    (``streams.seed_for``), drawn on the CPU (the same on every device) and moved to
    ``device``."""
    gen = torch.Generator().manual_seed(seed_for(seed, purpose, index))
    return torch.randperm(n, generator=gen).to(device)


class BatchLoader:
    """Iterate (x, y) mini-batches by slicing in-memory tensors.

    Shuffling draws a fresh permutation each epoch from run ``seed``'s ``batches`` stream for
    that epoch (``streams.seed_for``), so an epoch's batches depend only on (seed, epoch), not
    on history, and no two (seed, epoch) pairs share an order (``seed + epoch`` made seed 1's
    epoch 0 seed 0's epoch 1). Without ``set_epoch`` calls, each pass advances the epoch by one.

    With ``seeds`` that differ (a stack whose members are runs of different seeds), each
    member i gets its own order, that of ``seed=seeds[i]``: batches are (M, B, features) and
    (M, B), each member's rows gathered by its own indices, so it sees exactly the batches of
    its separate run. Equal seeds keep the shared (B, features) batch.

    ``image_shape`` (C, H, W) hands x out as (…, B, C, H, W) views of the same memory, for a
    model that reads images; None (the default) keeps them flat. ``augment`` (shuffled images
    only) randomly crops and flips each training image (``augment.augment_images``) from the
    ``augment`` stream of (seed, epoch), a stream of its own so the batches' order is the
    same with or without it.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        seeds: Sequence[int] | None = None,
        image_shape: ImageShape | None = None,
        augment: bool = False,
    ) -> None:
        if augment and (image_shape is None or not shuffle):
            raise ValueError("augment needs image_shape and shuffle (it is for training images)")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        distinct = seeds is not None and len(set(seeds)) > 1
        self.seeds = list(seeds) if distinct else [seeds[0] if seeds else seed]  # type: ignore[index]
        self.epoch = 0
        self.image_shape = image_shape
        self.augment = augment

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use epoch ``epoch``'s order (a run resumed at epoch E continues
        with the same batches as an uninterrupted one)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def order(self, seed: int) -> Tensor:
        """This epoch's permutation for ``seed``, on the data's device."""
        return permutation(len(self.x), seed, "batches", self.epoch, self.x.device)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if self.image_shape is None:
            yield from self.flat_batches()
            return
        gens = [self.augment_stream(s) for s in self.seeds] if self.augment else None
        for x, y in self.flat_batches():
            images = as_images(x, self.image_shape)
            if gens is not None:
                images = self.augmented(images, gens)
            yield images, y

    def flat_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches as stored, (B, features) or (M, B, features)."""
        n = len(self.x)
        if not self.shuffle:
            for i in range(0, n, self.batch_size):
                yield self.x[i : i + self.batch_size], self.y[i : i + self.batch_size]
            return
        orders = torch.stack([self.order(s) for s in self.seeds])
        self.epoch += 1
        for i in range(0, n, self.batch_size):
            idx = orders[:, i : i + self.batch_size]
            if len(self.seeds) == 1:
                idx = idx[0]
            yield self.x[idx], self.y[idx]

    def augment_stream(self, seed: int) -> torch.Generator:
        """The generator of this epoch's crops and flips for ``seed`` (drawn on the CPU, the
        same on every device)."""
        return torch.Generator().manual_seed(seed_for(seed, "augment", self.epoch))

    @staticmethod
    def augmented(images: Tensor, gens: list[torch.Generator]) -> Tensor:
        """Each member's images augmented from its own stream (one member: (B, C, H, W))."""
        if len(gens) == 1:
            return augment_images(images, gens[0])
        return torch.stack([augment_images(m, g) for m, g in zip(images, gens, strict=True)])


def scoring_batches(
    x: Tensor, y: Tensor, seeds: Sequence[int], event: int, n_batches: int, batch_size: int
) -> list[tuple[Tensor, Tensor]]:
    """The training images a data-driven criterion scores on at prune event ``event`` (the
    optimizer step it happens at): ``n_batches`` batches of ``batch_size``, member i's drawn
    from seed i's ``score`` stream, so a member scores on what its separate run would, and a
    resumed run on what an unbroken one did. Equal seeds share (B, in) batches; else each
    batch is (M, B, in) like a stacked training batch."""
    n = n_batches * batch_size
    distinct = list(dict.fromkeys(seeds))
    picks = {}
    for s in distinct:
        picks[s] = permutation(len(x), s, "score", event, x.device)[:n]
    idx = picks[seeds[0]] if len(distinct) == 1 else torch.stack([picks[s] for s in seeds])
    return [(x[part], y[part]) for part in idx.split(batch_size, dim=-1)]

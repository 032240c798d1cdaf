"""What a dataset is to prunelab: :class:`RawDataset` (its images and labels as stored) and
:class:`DatasetSpec` (where to find it, what one sample is), registered in ``DATASETS``.

Kept apart from the readers (``sources``, ``cifar``) and the known datasets (``registry``)
so that a reader can build a ``RawDataset`` and the config's checks can read a spec's shape
without importing either.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prunelab.registry import Registry

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True, eq=False)  # identity hash: usable as a cache key
class RawDataset:
    """A dataset as stored: uint8 samples flattened to (N, features), int64 labels.

    An image sample is flattened channel by channel, each channel row-major (C, H, W order),
    so that ``x.view(N, C, H, W)`` is the image with no copy (``loader.as_images``).
    """

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    source: str

    @property
    def n_features(self) -> int:
        return int(self.train_x.shape[1])

    @functools.cached_property
    def digest(self) -> str:
        """A sha256 of the content (images and labels of both splits), whatever the source:
        the dense cache keys on it, so a model trained on one file never serves another."""
        h = hashlib.sha256()
        for t in (self.train_x, self.train_y, self.test_x, self.test_y):
            h.update(str((tuple(t.shape), t.dtype)).encode())
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()

    @property
    def n_classes(self) -> int:
        return int(self.train_y.max()) + 1


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset prunelab can find: where its IDX files may sit, where to download them
    (with their md5 sums, the ones torchvision checks too), and what to tell a user who has
    none. A dataset in another format, or one made up (a test's), gives ``load`` instead: it
    builds the ``RawDataset`` from ``paths.data_dir`` itself. Registered in ``DATASETS``; its
    YAML (conf/data/<name>.yaml) holds the normalisation."""

    name: str
    mirrors: tuple[str, ...] = ()
    md5: dict[str, str] = field(default_factory=dict)
    system_dirs: tuple[Path, ...] = ()
    bundled: Callable[[], RawDataset | None] | None = None  # an installed copy, if any
    remedy: str = ""  # the extra ways to get it, e.g. "`pip install …`, "
    load: Callable[[Path], RawDataset] | None = None
    # (inputs, classes) when known without loading it: model.sizes is checked against it
    # with the command line, before any data loads (``config.checks``); else once loaded.
    shape: tuple[int, int] | None = None
    # One sample as an image, (channels, height, width), for a model that reads images
    # (``loader.as_images``); C·H·W is the sample's flat size. None: not an image.
    image_shape: tuple[int, int, int] | None = None

    def sample_shape(self, n_features: int) -> tuple[int, ...]:
        """One sample as a model takes it: the image shape (C, H, W), or the ``n_features``
        flat features of a dataset that declares none."""
        return tuple(self.image_shape) if self.image_shape is not None else (n_features,)


def is_dataset(obj: object) -> bool:
    return isinstance(obj, DatasetSpec)


DATASETS: Registry[DatasetSpec] = Registry("dataset", "data", is_dataset)

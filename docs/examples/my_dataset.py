"""A dataset of your own: 28×28 images of one bright horizontal bar; the class is the bar's
position (10 classes). Made up on the fly, the same on every machine, so it needs no files.

A dataset is a ``DatasetSpec``: either where its IDX files may be (and mirrors with md5 sums),
or, as here, a ``load`` function that builds the ``RawDataset`` (uint8 samples flattened to
(N, features), int64 labels). ``image_shape`` lets a conv net read each sample as an image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from prunelab.data import DatasetSpec, RawDataset


def make_bars(data_dir: Path) -> RawDataset:
    """10 500 training images (the last 10 000 are the validation split) and 500 test ones:
    a bar of 2 rows at row 2 + 2.4·class, plus noise."""
    rng = np.random.default_rng(0)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = rng.integers(0, 10, n)
        x = rng.normal(40, 30, (n, 28, 28))
        for i, c in enumerate(y):
            row = 2 + int(2.4 * c)
            x[i, row : row + 2, 4:24] += 160
        x = np.clip(x, 0, 255).astype(np.uint8).reshape(n, 784)
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    train_x, train_y = draw(10_500)
    test_x, test_y = draw(500)
    return RawDataset("bars", train_x, train_y, test_x, test_y, source="generated:bars")


BARS = DatasetSpec("bars", load=make_bars, shape=(784, 10), image_shape=(1, 28, 28))

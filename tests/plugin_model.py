"""A model defined outside ``src/``: what a user brings. ``tests/test_models.py`` builds it
by import path (``model.name=tests.plugin_model:TinyConv``) and prunes, stacks and trains
it with no edit to prunelab. Not collected by pytest (no ``test_`` prefix)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class TinyConv(nn.Module):
    """conv 4@3×3 → ReLU → max-pool 2 → fc 16 → ReLU → fc classes, with biases: a small
    conv net of the shape users write (it declares nothing for prunelab)."""

    def __init__(self, image_shape: Sequence[int] = (1, 28, 28), classes: int = 10,
                 width: int = 4) -> None:  # fmt: skip
        super().__init__()
        c, h, w = image_shape
        self.conv = nn.Conv2d(c, width, 3)
        self.hidden = nn.Linear(width * ((h - 2) // 2) * ((w - 2) // 2), 16)
        self.out = nn.Linear(16, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.out(F.relu(self.hidden(x.flatten(1))))


class Residual(nn.Module):
    """Two linear layers whose outputs are summed: units that feed a sum."""

    def __init__(self, image_shape: Sequence[int] = (1, 4, 4), classes: int = 3) -> None:
        super().__init__()
        n = image_shape[0] * image_shape[1] * image_shape[2]
        self.a = nn.Linear(n, 8, bias=False)
        self.b = nn.Linear(8, 8, bias=False)
        self.head = nn.Linear(8, classes, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.a(x.flatten(1)))
        return self.head(h + F.relu(self.b(h)))

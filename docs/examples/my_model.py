"""A model of your own: a small conv net. It declares nothing for prunelab: its Linear and
Conv2d weights are the prunable ones (the last is the output layer), a unit is a row or an
output channel, and which layer a unit feeds is read from the model by a torch.fx trace.

prunelab builds it with ``image_shape`` (C, H, W) and ``classes`` from the data, ``bias``
from ``model.bias``, and any ``+model.args.<name>=…`` as keyword arguments.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class SmallConvNet(nn.Module):
    """conv width@5×5 → ReLU → max-pool 2 → fc hidden → ReLU → fc classes."""

    def __init__(self, image_shape: Sequence[int] = (1, 28, 28), classes: int = 10,
                 bias: bool = False, width: int = 8, hidden: int = 32) -> None:  # fmt: skip
        super().__init__()
        c, h, w = image_shape
        self.conv = nn.Conv2d(c, width, 5, bias=bias)
        self.fc = nn.Linear(width * ((h - 4) // 2) * ((w - 4) // 2), hidden, bias=bias)
        self.out = nn.Linear(hidden, classes, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.out(F.relu(self.fc(x.flatten(1))))

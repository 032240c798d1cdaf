"""Turn a pruned MLP into a form that is actually cheaper to run.

``compact`` drops every dead unit (no live input, or no live consumer; see
``pruning.alive_units``) and the matching input columns of the next layer, leaving a smaller
*dense* MLP with the same logits. Unit pruning at k removes about k of each hidden layer's
rows and k of the next layer's columns, so the compact model needs ≈ (1-k)² of the FLOPs: the
evaluation of a unit-pruned model gets that much faster (DESIGN §5).
"""

from __future__ import annotations

import torch

from prunelab.model import MaskedMLP
from prunelab.pruning import alive_units


@torch.no_grad()
def compact(net: MaskedMLP) -> MaskedMLP:
    """A smaller dense copy of ``net`` without its dead units; same logits (to float rounding).

    Inputs and outputs keep their sizes. A hidden layer left with no live unit keeps one (dead,
    all-zero) unit so shapes stay valid; the network then outputs constant logits, as ``net``
    does.
    """
    masks = net.masks()
    alive = alive_units(masks)
    rows = []
    for i, a in enumerate(alive):
        idx = a.nonzero().flatten() if i < len(alive) - 1 else torch.arange(len(a), device=a.device)
        rows.append(idx if len(idx) else torch.zeros(1, dtype=torch.long, device=a.device))
    cols = [torch.arange(masks[0].shape[1], device=masks[0].device), *rows[:-1]]
    sizes = [masks[0].shape[1], *(len(r) for r in rows)]
    small = MaskedMLP(sizes).to(
        device=net.layers[0].weight.device, dtype=net.layers[0].weight.dtype
    )
    for src, dst, r, c in zip(net.layers, small.layers, rows, cols, strict=True):
        dst.weight.copy_((src.weight * src.mask)[r][:, c])
        dst.mask.copy_(src.mask[r][:, c])
    return small

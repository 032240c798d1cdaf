"""The arithmetic every part of prunelab shares: a stacked bias-free linear layer and each
member's loss. One definition, so the criteria that run the network (SNIP, GraSP, SynFlow…)
compute exactly what training computes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prunelab.lazy import lazy_import

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_import("torch", __name__, "torch")
F = lazy_import("torch.nn.functional", __name__, "F")


def stacked_linear(x: Tensor, w: Tensor) -> Tensor:
    """``x``: (B, in) shared by every member, or (M, B, in); ``w`` (M, out, in), masked
    already; returns (M, B, out). One member: ``F.linear``'s GEMM (the bits of a plain
    ``nn.Linear``); more: one batched matmul."""
    if w.shape[0] == 1:
        # squeeze, not [0]: its backward is a view, where indexing's copies the gradient
        return F.linear(x if x.dim() == 2 else x.squeeze(0), w.squeeze(0)).unsqueeze(0)
    return torch.matmul(x, w.transpose(1, 2))


def member_losses(logits: Tensor, y: Tensor) -> Tensor:
    """Each member's mean cross-entropy over the batch, (M,), from logits (M, B, C) and
    labels (B,) shared by all members or (M, B), each member's own. Summed, their gradient
    with respect to a member's weights is that member's own gradient (members never
    interact)."""
    m, b, c = logits.shape
    targets = y.reshape(m * b) if y.dim() == 2 else y.repeat(m)
    per_sample = F.cross_entropy(logits.reshape(m * b, c), targets, reduction="none")
    return per_sample.view(m, b).mean(dim=1)

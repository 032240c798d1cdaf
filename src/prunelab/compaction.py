"""Compaction of any model: the dead units of a pruned net removed for real.

``sparse.compact`` does it for the challenge MLP; ``compact_net`` for every other model,
through its ``LayerGraph``: a dead output channel of a conv goes with its filter and with the
input channels (or the H·W flattened columns) of the layer it fed, leaving a physically
smaller model of the same class of layers with the same logits. Unit (channel) pruning at k
leaves ≈ (1 − k)² of a middle layer's FLOPs: that is what channel pruning buys on any
hardware, where sparse weights need sparse kernels to pay (``benchmarks/bench_sparse.py``).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from prunelab.pruning import alive_units
from prunelab.stack import MaskedNet, module_name


def kept_indices(keep: Tensor) -> Tensor:
    """Indices of the kept units; one (dead) unit where none is, so shapes stay valid."""
    idx = keep.nonzero().flatten()
    return idx if len(idx) else torch.zeros(1, dtype=torch.long, device=keep.device)


def smaller_layer(layer: nn.Module, rows: Tensor, cols: Tensor) -> nn.Module:
    """A ``Linear`` or ``Conv2d`` like ``layer`` with only output units ``rows`` and input
    columns (channels) ``cols``, its bias sliced too."""
    bias = layer.bias is not None
    if isinstance(layer, nn.Conv2d):
        new: nn.Module = nn.Conv2d(len(cols), len(rows), layer.kernel_size, layer.stride,
                                   layer.padding, layer.dilation, bias=bias)  # fmt: skip
    else:
        new = nn.Linear(len(cols), len(rows), bias=bias)
    return new.to(device=layer.weight.device, dtype=layer.weight.dtype)


def kept_bias_marked(small: Tensor, rows: Tensor) -> Tensor:
    """``small``, a compacted layer's mask, where a unit that kept incoming weights only from
    removed (all-zero) units keeps one of its zero weights marked as kept: a unit whose every
    incoming weight is masked loses its bias too (``stack.MaskedNet``), but this one still
    outputs its constant relu(bias), which the layers it feeds read."""
    lost = ~small.flatten(1).any(dim=1) & rows.flatten(1).any(dim=1)
    if not bool(lost.any()):
        return small
    marked = small.clone()
    marked.flatten(1)[lost, 0] = True
    return marked


@torch.no_grad()
def compact_net(net: MaskedNet) -> MaskedNet:
    """``compact`` for any model: a copy of ``net`` whose layers lost their dead units
    (output channels of a conv, rows of a linear layer) and the input columns (channels)
    that read them, through the model's ``LayerGraph``; same logits. A unit of a layer with
    a bias stays where its bias is not 0 (it outputs a constant that later layers may use)."""
    graph, masks = net.layout, net.masks()
    params = net.masked_params()
    alive = alive_units(masks, graph)
    keep = []
    for j, a in enumerate(alive):
        bias = params.get(f"{module_name(graph.names[j])}.bias")
        removable = graph.feeds[j] is not None  # a hidden layer that feeds one layer
        keep.append(kept_indices(a | (bias != 0) if bias is not None else a) if removable
                    else torch.arange(len(a), device=a.device))  # fmt: skip
    model = copy.deepcopy(net.model)
    small_masks = []
    for j, name in enumerate(graph.names):
        p = graph.producer(j)
        n_cols = masks[j].shape[1]
        cols = torch.arange(n_cols, device=masks[j].device)
        if p is not None:
            r = graph.repeat[p]
            cols = (keep[p][:, None] * r + torch.arange(r, device=cols.device)).flatten()
        rows, layer = keep[j], net.model.get_submodule(module_name(name))
        new = smaller_layer(layer, rows, cols)
        new.weight.copy_(params[name][rows][:, cols])
        if new.bias is not None:
            new.bias.copy_(params[f"{module_name(name)}.bias"][rows])
        model.set_submodule(module_name(name), new)
        small_masks.append(kept_bias_marked(masks[j][rows][:, cols], masks[j][rows]))
    small = MaskedNet(model, net.image_shape)
    for dst, src in zip(small.masks(), small_masks, strict=True):
        dst.copy_(src)
    return small

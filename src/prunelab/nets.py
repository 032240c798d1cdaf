"""The challenge MLP: alone (``MaskedMLP``, the type you export and inspect) and as a stack of
M ≥ 1 members trained as one (``StackedMLP``, the type every run trains).

Both compute ``out_l = relu(out_{l-1} · W_l)``, bias-free, logits at the end (softmax lives in
the cross-entropy loss). Every layer owns a boolean ``mask`` buffer of its weight's shape, so
masks travel in ``state_dict`` and checkpoints with no reparametrisation
(``torch.nn.utils.prune``'s ``weight_orig``/``weight_mask`` renames keys and breaks deepcopy),
and the mask is multiplied in ``forward``, so a pruned weight's gradient is exactly 0.

A stack puts a member axis in front of every weight and mask, (M, out, in). One batched matmul
runs all members; with M = 1 a layer is the plain GEMM of ``MaskedLinear`` instead, so a run of
one model gives the same bits as the unstacked model (``tests/test_nets.py``). Plain PyTorch:
no Lightning, no config.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from prunelab.functional import stacked_linear
from prunelab.graph import LayerGraph
from prunelab.pruning import (
    Sparsity,
    prunable_layers,
    sparsity_report,
    stacked_sparsity_report,
)
from prunelab.scoring import Network
from prunelab.selection import Batch, Method, stacked_masks
from prunelab.streams import seed_for

M = TypeVar("M", bound=nn.Module)


@torch.no_grad()
def install_masks(
    weights: Sequence[Tensor],
    masks: Sequence[Tensor],
    method: Method,
    ks: Sequence[Sparsity],
    prune_output: bool,
    seeds: Sequence[int],
    batches: Sequence[Batch] = (),
    network: Network | None = None,
) -> None:
    """Recompute the masks of the prunable layers from ``weights`` and write them in place.

    ``weights`` and ``masks`` are (M, out, in, …) per layer: a stack's tensors, or one
    model's with a member axis of 1 in front; ``ks`` (one k, or one per prunable layer) and
    ``seeds`` have one entry per member; ``batches`` feed a criterion that needs data, run
    through ``network`` (None: the MLP the weights make). The masks are copied into the
    existing buffers (which keeps them on the model's device whatever device the selection
    ran on) and the weights they remove are zeroed.
    """
    chosen = [i for i, p in enumerate(prunable_layers(len(weights), prune_output)) if p]
    new = stacked_masks(method, weights, ks, seeds, masks, chosen, batches, network)
    for i, mask in zip(chosen, new, strict=True):
        masks[i].copy_(mask)
        weights[i].mul_(masks[i])


class FullMask:
    """Whether a layer's mask keeps every weight, as last checked (``refresh``), and whether
    that check still holds.

    While nothing is pruned (the dense phase, and every epoch of a schedule that lifts its
    masks until it prunes again) ``weight * mask`` is a copy of the weight and its backward a
    second pass over the gradient: two full passes per layer and step that change no bit (a
    weight or gradient times 1 is itself). The forward asks ``holds``, which reads nothing
    from the device: it compares the mask's version counter, bumped by every in-place write
    (``copy_``, ``fill_``, an indexed assignment, ``load_state_dict``), with the one
    ``refresh`` saw. ``refresh`` reads the mask on the host, once after each change; the
    module calls it before each training step (``PruningModule.on_train_batch_start``), so a
    training step itself never waits for the device. Unrefreshed, the product is made.
    """

    def __init__(self) -> None:
        self._mask: weakref.ref[Tensor] | None = None
        self._version = -1
        self._full = False

    def __getstate__(self) -> dict[str, object]:
        return {}  # a weak reference does not pickle; a copy checks its mask afresh

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__()  # type: ignore[misc]

    def _current(self, mask: Tensor) -> bool:
        seen = self._mask() if self._mask is not None else None
        return seen is mask and self._version == mask._version

    def refresh(self, mask: Tensor) -> None:
        """Check ``mask`` on the host if it changed since the last check."""
        if mask.is_inference() or self._current(mask):  # no version counter, or no change
            return
        self._full = bool(mask.all())
        self._mask, self._version = weakref.ref(mask), mask._version

    def holds(self, mask: Tensor) -> bool:
        """``mask`` keeps every weight, by a check that is still current (no host read)."""
        return self._full and not mask.is_inference() and self._current(mask)


class MaskedLinear(nn.Linear):
    """A bias-free linear layer whose weight is multiplied by a fixed boolean mask."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__(n_in, n_out, bias=False)
        self.register_buffer("mask", torch.ones_like(self.weight, dtype=torch.bool))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask)


class MaskedModel(nn.Module):
    """What one masked model does with its masks, whatever the model: prune and count. A
    subclass gives its ``weights`` and ``masks`` (one per prunable layer, in forward order),
    how a criterion runs it (``network``) and how its layers connect (``graph``)."""

    def weights(self) -> list[Tensor]:
        raise NotImplementedError

    def masks(self) -> list[Tensor]:
        raise NotImplementedError

    def network(self) -> Network | None:
        return None  # the MLP its weights make

    def graph(self) -> LayerGraph | None:
        return None  # the MLP's chain

    def prune(
        self,
        method: Method,
        k: Sparsity,
        prune_output: bool = False,
        seed: int = 0,
        batches: Sequence[Batch] = (),
    ) -> None:
        """Recompute masks from the current weights and install them (pruned weights → 0)."""
        weights = [w.data[None] for w in self.weights()]
        masks = [mask[None] for mask in self.masks()]
        net = self.network()
        install_masks(weights, masks, method, [k], prune_output, [seed], batches, net)

    def sparsity(self, k: float, prune_output: bool = False) -> dict[str, float]:
        """Sparsity figures of the masks as they are now (see ``pruning.sparsity_report``)."""
        prunable = prunable_layers(len(self.masks()), prune_output)
        return sparsity_report(self.masks(), prunable, k, self.graph())


class MaskedMLP(MaskedModel):
    """Bias-free ReLU MLP; ``sizes`` = [inputs, hidden…, classes] (checked by ``config``)."""

    def __init__(self, sizes: Sequence[int]) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in itertools.pairwise(sizes))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)

    def masks(self) -> list[Tensor]:
        return [layer.mask for layer in self.layers]

    def weights(self) -> list[Tensor]:
        return [layer.weight for layer in self.layers]

    @torch.no_grad()
    def release(self) -> None:
        """Lift every mask (pruned weights stay 0 but get gradients again)."""
        for mask in self.masks():
            mask.fill_(True)


def seeded(make: Callable[[], M], seed: int, purpose: str = "init") -> M:
    """``make()`` with its initial weights drawn from run ``seed``'s stream ``purpose``
    (``streams.seed_for``): ``init`` for a run's network, ``reinit`` for the lottery's fresh
    control. Drawn inside a forked RNG, so the process's own random state is left alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(seed, purpose))
        return make()


def seeded_mlp(sizes: Sequence[int], seed: int, purpose: str = "init") -> MaskedMLP:
    """A new ``MaskedMLP`` of ``sizes`` initialised from ``seed``'s stream ``purpose``."""
    return seeded(lambda: MaskedMLP(sizes), seed, purpose)


def fresh_weights(
    sizes: Sequence[int], seeds: Sequence[int], device: torch.device, dtype: torch.dtype
) -> list[Tensor]:
    """New initial weights of the kind ``MaskedMLP`` draws, one member per seed, stacked
    (M, out, in) per layer: the lottery's re-initialised control, from each seed's ``reinit``
    stream (never its ``init`` stream, which would replay the original weights)."""
    members = [[layer.weight.detach() for layer in seeded_mlp(sizes, s, "reinit").layers]
               for s in seeds]  # fmt: skip
    return [torch.stack(ws).to(device=device, dtype=dtype) for ws in zip(*members, strict=True)]


class StackedLayer(nn.Module):
    """M bias-free linear layers: ``weight`` and boolean ``mask`` of shape (M, out, in)."""

    def __init__(self, weight: Tensor, mask: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.register_buffer("mask", mask)
        self.full = FullMask()

    def forward(self, x: Tensor) -> Tensor:
        """``x``: (B, in) shared by every member, or (M, B, in); returns (M, B, out)."""
        full = self.full.holds(self.mask)  # the product changes no bit then (``FullMask``)
        return stacked_linear(x, self.weight if full else self.weight * self.mask)


class MemberStack(nn.Module):
    """What every stack of M ≥ 1 members does with its masks, whatever the model: the
    pruning, lifting and counting of member ``i``, addressed by index. Its weights and
    masks are the ``[i]`` slices of ``layers[l].weight`` / ``.mask``, which the pruning of one
    member reads and writes in place, leaving the others untouched. A subclass says how its
    criteria run it (``network``) and how its layers connect (``graph``)."""

    layers: nn.ModuleList

    def network(self) -> Network | None:
        """How a criterion runs this stack (None: the MLP its weights make)."""
        return None

    def graph(self) -> LayerGraph | None:
        """How its prunable layers connect (None: the MLP's chain)."""
        return None

    def fresh_weights(self, seeds: Sequence[int]) -> list[Tensor]:
        """New initial values of every parameter (``parameters()`` order), one member per
        seed from its ``reinit`` stream, stacked (M, …), on this stack's device and in its
        dtype: the lottery's re-initialised control."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.layers[0].weight.shape[0]

    def refresh_full_masks(self) -> None:
        """Note which layers' masks keep every weight (``FullMask.refresh``: a host read only
        where a mask changed), so that their forward skips the mask product."""
        for layer in self.layers:
            layer.full.refresh(layer.mask)

    def masks(self, i: int) -> list[Tensor]:
        """Member ``i``'s masks, per layer (views: writing them writes the stack)."""
        return [layer.mask[i] for layer in self.layers]

    def prune(
        self,
        members: Sequence[int],
        method: Method,
        ks: Sequence[Sparsity],
        prune_output: bool = False,
        seeds: Sequence[int] | None = None,
        batches: Sequence[Batch] = (),
    ) -> None:
        """Recompute and install the masks of each of ``members`` (member ``members[j]`` at
        ``ks[j]``, seeded ``seeds[j]``, default 0) in one batched selection, pruned weights
        set to 0; the others are untouched. ``batches`` are the whole stack's (x of
        (M, B, in) is sliced to ``members``)."""
        seeds = [0] * len(members) if seeds is None else seeds
        net = self.network()
        if list(members) == list(range(len(self))):  # the whole stack: no gather, no scatter
            weights = [layer.weight.data for layer in self.layers]
            install_masks(weights, self.all_masks(), method, ks, prune_output, seeds, batches, net)
            return
        idx = torch.tensor(members, device=self.layers[0].weight.device)
        weights = [layer.weight.data[idx] for layer in self.layers]
        masks = [mask[idx] for mask in self.all_masks()]
        own = [(x[idx] if x.dim() == 3 else x, y[idx] if y.dim() == 2 else y) for x, y in batches]
        install_masks(weights, masks, method, ks, prune_output, seeds, own, net)
        with torch.no_grad():
            for layer, w, mask in zip(self.layers, weights, masks, strict=True):
                layer.weight.data[idx] = w
                layer.mask[idx] = mask

    @torch.no_grad()
    def release(self, members: Sequence[int]) -> None:
        """Lift every mask of each of ``members`` (pruned weights stay 0 but get gradients
        again)."""
        idx = torch.tensor(members, device=self.layers[0].weight.device)
        for mask in self.all_masks():
            mask[idx] = True

    def all_masks(self) -> list[Tensor]:
        """Every member's masks, (M, out, in, …) per layer."""
        return [layer.mask for layer in self.layers]

    def sparsity(self, ks: Sequence[float], prune_output: bool = False) -> list[dict[str, float]]:
        """The sparsity figures of every member (member i pruned at ``ks[i]``;
        ``pruning.stacked_sparsity_report``), counted on the stack's device in one pass and
        read back in one transfer."""
        prunable = prunable_layers(len(self.layers), prune_output)
        return stacked_sparsity_report(self.all_masks(), prunable, ks, self.graph())


class StackedMLP(MemberStack):
    """M ``MaskedMLP`` of equal sizes as one module; ``forward`` gives (M, B, classes)."""

    def __init__(self, members: Sequence[MaskedMLP]) -> None:
        super().__init__()
        if not members:
            raise ValueError("a stacked model needs at least one member")
        self.sizes = list(members[0].sizes)
        if any(list(m.sizes) != self.sizes for m in members):
            raise ValueError("stacked members must all have the same sizes")
        self.layers = nn.ModuleList(
            StackedLayer(
                torch.stack([m.layers[i].weight.detach() for m in members]).clone(),
                torch.stack([m.layers[i].mask for m in members]).clone(),
            )
            for i in range(len(self.sizes) - 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)

    def fresh_weights(self, seeds: Sequence[int]) -> list[Tensor]:
        weight = self.layers[0].weight
        return fresh_weights(self.sizes, seeds, weight.device, weight.dtype)

    def unstack(self, i: int) -> MaskedMLP:
        """A standalone copy of member ``i``, on the stack's device and in its dtype."""
        with torch.device("meta"):  # no init: no time spent, no RNG drawn
            net = MaskedMLP(self.sizes)
        weight = self.layers[0].weight
        net = net.to_empty(device=weight.device).to(weight.dtype)
        with torch.no_grad():
            for src, dst in zip(self.layers, net.layers, strict=True):
                dst.weight.copy_(src.weight[i])
                dst.mask.copy_(src.mask[i])
        return net

"""Any model, masked (``MaskedNet``) and as a stack of M ≥ 1 members trained as one
(``StackedNet``): the conv nets of ``models`` and a module a user wrote.

A model here is a plain ``nn.Module`` whose forward maps a batch of images (B, C, H, W), or
of flat features for a linear-only model, to logits (B, classes). Its prunable weights are
its ``Linear`` and ``Conv2d`` weights, read from the model itself (``layout.read_graph``).
Data stays flat, (B, C·H·W), as the challenge MLP takes it; the net reshapes it to its
``image_shape``.

A stack gives every parameter a member axis in front, as ``torch.func.stack_module_state``
does (PyTorch's model-ensembling recipe), and runs its members as one with
``torch.vmap(functional_call(base, params, x))``; the masked weights live in ``layers``,
(M, out, in, kh, kw) for a conv, exactly like ``nets.StackedMLP``'s (M, out, in), so the
pruning, the callbacks and the counting of ``nets.MemberStack`` serve both. With M = 1 the
member's model is called directly (no vmap): a stack of one gives the bits of the model
alone. The challenge MLP keeps its own batched-matmul stack (``nets.StackedMLP``), measured
faster and kept bit-identical.

A unit whose every incoming weight is masked is removed whole: its bias, if the model has
one, is masked too, so a pruned unit outputs exactly 0 (what unit pruning and the effective
sparsity count on).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

from prunelab.graph import LayerGraph
from prunelab.layout import read_graph
from prunelab.nets import FullMask, MaskedModel, MemberStack
from prunelab.scoring import Extras, Network, Outputs, Tensors


def module_name(weight_name: str) -> str:
    """``features.0.weight`` → ``features.0``."""
    return weight_name.rsplit(".", 1)[0]


def unit_alive(mask: Tensor) -> Tensor:
    """Which units (axis 1 of a stacked mask (M, out, …)) keep any incoming weight."""
    return mask.flatten(2).any(dim=2)


class MaskedNet(MaskedModel):
    """One model with a boolean mask per prunable weight (``mask0``, ``mask1``… in forward
    order): what a stack member becomes alone, to export and inspect. Its forward
    multiplies each weight by its mask, so a pruned weight's gradient is exactly 0."""

    def __init__(self, model: nn.Module, image_shape: Sequence[int]) -> None:
        super().__init__()
        self.model = model
        self.image_shape = tuple(image_shape)
        self.layout = read_graph(model, self.image_shape)
        params = dict(model.named_parameters())
        for i, name in enumerate(self.layout.names):
            self.register_buffer(f"mask{i}", torch.ones_like(params[name], dtype=torch.bool))

    def masks(self) -> list[Tensor]:
        return [getattr(self, f"mask{i}") for i in range(len(self.layout))]

    def weights(self) -> list[Tensor]:
        params = dict(self.model.named_parameters())
        return [params[name] for name in self.layout.names]

    def masked_params(self) -> dict[str, Tensor]:
        """Every parameter as the forward uses it: weights times masks, biases of removed
        units masked."""
        params = dict(self.model.named_parameters())
        for name, mask in zip(self.layout.names, self.masks(), strict=True):
            params[name] = params[name] * mask
            bias = f"{module_name(name)}.bias"
            if params.get(bias) is not None:
                params[bias] = params[bias] * unit_alive(mask[None])[0]
        return params

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], *self.image_shape)
        return functional_call(self.model, self.masked_params(), (x,))

    def graph(self) -> LayerGraph:
        return self.layout

    def network(self) -> Network:
        return StackedNet([self]).network()  # runs with the weights it is given

    @torch.no_grad()
    def load_member(self, stack: StackedNet, i: int) -> None:
        """Take member ``i``'s weights and masks from ``stack``."""
        params = dict(self.model.named_parameters())
        for name, value in stack.member_params(i).items():
            params[name].copy_(value)
        for mask, layer in zip(self.masks(), stack.layers, strict=True):
            mask.copy_(layer.mask[i])


class StackedWeight(nn.Module):
    """One prunable weight of every member: ``weight`` and boolean ``mask`` (M, out, …)."""

    def __init__(self, weight: Tensor, mask: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.register_buffer("mask", mask)
        self.full = FullMask()

    def effective(self) -> Tensor:
        """The weight as the forward uses it (``FullMask``: no product while all kept)."""
        return self.weight if self.full.holds(self.mask) else self.weight * self.mask


class StackedNet(MemberStack):
    """M ``MaskedNet`` of one architecture as one module; ``forward`` gives (M, B, classes)."""

    def __init__(
        self,
        members: Sequence[MaskedNet],
        factory: Callable[[int, str], MaskedNet] | None = None,
    ) -> None:
        """``factory(seed, purpose)`` builds a fresh member (``models.masked_member``): what
        the lottery's re-initialised control draws its new weights from."""
        super().__init__()
        self.__dict__["factory"] = factory
        if not members:
            raise ValueError("a stacked model needs at least one member")
        first = members[0]
        if any(type(m.model) is not type(first.model) or m.layout != first.layout
               for m in members):  # fmt: skip
            raise ValueError("stacked members must all have the same architecture")
        self.image_shape = first.image_shape
        self.layout = first.layout
        base = copy.deepcopy(first.model).to("meta")  # only its code runs: no weights held
        self.__dict__["base"] = base  # not a submodule: out of state_dict and .to()
        params, buffers = stack_module_state([m.model for m in members])
        names = set(self.layout.names)
        self.layers = nn.ModuleList(
            StackedWeight(params[n].detach().clone(), torch.stack([m.masks()[i] for m in members]))
            for i, n in enumerate(self.layout.names)
        )
        self.extra_names = [n for n in params if n not in names]
        self.extras = nn.ParameterList(nn.Parameter(params[n].detach().clone())
                                       for n in self.extra_names)  # fmt: skip
        self.buffer_names = list(buffers)
        for i, n in enumerate(self.buffer_names):
            self.register_buffer(f"state{i}", buffers[n].clone())

    def graph(self) -> LayerGraph:
        return self.layout

    def network(self) -> Network:
        return Network(self.run, self.layout, math.prod(self.image_shape))

    def forward(self, x: Tensor) -> Tensor:
        """``x``: (B, features) shared by every member, or (M, B, features); (M, B, C)."""
        weights = [layer.effective() for layer in self.layers]
        return self.call(weights, [layer.mask for layer in self.layers], x, None, False)[0]

    def run(self, weights: Tensors, masks: Tensors, x: Tensor, extras: Extras = None) -> Outputs:
        """``scoring.Forward``: the stack with these weights (times ``masks``), its other
        parameters mapped by ``extras`` (detached), on ``x``: logits (M, B, C) and each
        hidden prunable layer's output after a ReLU."""
        masked = [w * m for w, m in zip(weights, masks, strict=True)]
        return self.call(masked, masks, x, extras, True)

    def call(
        self, weights: Tensors, masks: Tensors, x: Tensor, extras: Extras, hidden: bool
    ) -> Outputs:
        """The members with masked ``weights`` on flat ``x``; with ``hidden``, each hidden
        prunable layer's output after a ReLU too (what activation criteria average)."""
        params = dict(zip(self.layout.names, weights, strict=True))
        for name, value in zip(self.extra_names, self.extras, strict=True):
            params[name] = value if extras is None else extras(value)
        for i, name in enumerate(self.layout.names):  # a removed unit's bias goes with it
            bias = f"{module_name(name)}.bias"
            if bias in params:
                params[bias] = params[bias] * unit_alive(masks[i]).to(params[bias].dtype)
        for i, name in enumerate(self.buffer_names):
            params[name] = getattr(self, f"state{i}")
        shared = x.dim() == 2
        x = x.reshape(*x.shape[:-1], *self.image_shape)
        if len(self) == 1:  # the model alone: its own bits
            one = {n: v.squeeze(0) for n, v in params.items()}
            logits, outs = self.one(one, x if shared else x.squeeze(0), hidden)
            return logits.unsqueeze(0), [o.unsqueeze(0) for o in outs]
        in_x = None if shared else 0
        logits, outs = torch.vmap(lambda p, xb: self.one(p, xb, hidden), in_dims=(0, in_x))(
            params, x
        )
        return logits, list(outs)

    def one(
        self, params: dict[str, Tensor], x: Tensor, hidden: bool
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One member's logits (and hidden outputs, recorded by hooks on its prunable layers
        for this call only) with ``params``."""
        if not hidden:
            return functional_call(self.base, params, (x,)), ()
        seen: list[Tensor] = []
        handles = [
            self.base.get_submodule(module_name(n)).register_forward_hook(
                lambda mod, args, out: seen.append(out)
            )
            for n in self.layout.names
        ]
        try:
            logits = functional_call(self.base, params, (x,))
        finally:
            for h in handles:
                h.remove()
        return logits, tuple(F.relu(z) for z in seen[:-1])

    def fresh_weights(self, seeds: Sequence[int]) -> list[Tensor]:
        if self.factory is None:
            raise ValueError("this stack was built without a factory: it cannot draw fresh weights")
        fresh = [dict(self.factory(seed, "reinit").model.named_parameters()) for seed in seeds]
        weight = self.layers[0].weight
        return [torch.stack([f[n].detach() for f in fresh]).to(weight)
                for n in [*self.layout.names, *self.extra_names]]  # fmt: skip

    def member_params(self, i: int) -> dict[str, Tensor]:
        """Member ``i``'s parameters by name (views)."""
        out = {n: layer.weight[i] for n, layer in zip(self.layout.names, self.layers, strict=True)}
        out.update({n: v[i] for n, v in zip(self.extra_names, self.extras, strict=True)})
        return out

    def unstack(self, i: int) -> MaskedNet:
        """A standalone copy of member ``i``, on the stack's device and in its dtype."""
        weight = self.layers[0].weight
        model = copy.deepcopy(self.base).to_empty(device=weight.device).to(weight.dtype)
        for j, name in enumerate(self.buffer_names):
            model.get_buffer(name).copy_(getattr(self, f"state{j}")[i])
        net = MaskedNet(model, self.image_shape)
        net.load_member(self, i)
        return net

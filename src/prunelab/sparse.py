"""Turn a pruned MLP into a form that is actually cheaper to run.

``compact`` drops every dead unit (no live input, or no live consumer; see
``pruning.alive_units``) and the matching input columns of the next layer, leaving a smaller
*dense* MLP with the same logits. Unit pruning at k removes about k of each hidden layer's
rows and k of the next layer's columns, so the compact model needs ≈ (1-k)² of the FLOPs: the
evaluation of a unit-pruned model gets that much faster (``benchmarks/bench_sparse.py``).

``export`` goes further for inference: weight-pruned layers sparse enough to pay become
``torch.sparse_csr`` matrices (int32 indices). ``save_export``/``load_export`` store the result
as plain tensors that load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from prunelab.compaction import compact_net
from prunelab.nets import MaskedMLP
from prunelab.pruning import alive_units
from prunelab.results import save_state_atomic
from prunelab.stack import MaskedNet


@torch.no_grad()
def compact(net: MaskedMLP | MaskedNet) -> MaskedMLP | MaskedNet:
    """A smaller dense copy of ``net`` without its dead units; same logits (to float rounding).
    Any model other than the MLP: ``compaction.compact_net``.

    Inputs and outputs keep their sizes. A hidden layer left with no live unit keeps one (dead,
    all-zero) unit so shapes stay valid; the network then outputs constant logits, as ``net``
    does.
    """
    if isinstance(net, MaskedNet):
        return compact_net(net)
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


TARGETS = ("dense", "compact", "csr", "auto")
FORMAT = "prunelab-sparse-mlp/1"
# CSR is "beta" in PyTorch and says so on every construction; we rely only on CSR @ dense.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
Timer = Callable[[Tensor, int], dict[str, float]]
ModelTimer = Callable[[nn.Module, int], float]
# ``auto`` takes a CSR form only where it measures at most this share of the dense time. Two
# timings of one form at batch 10 000 differ by up to ≈ 8 % on a 2-core CPU, so a form that
# wins by less may lose the next measurement: near break-even, stay dense (docs/performance.md).
CSR_MARGIN = 0.9


def layer_seconds(w: Tensor, batch_size: int, reps: int = 5) -> dict[str, float]:
    """Seconds of one layer's product at ``batch_size`` on this machine, as a dense and as a
    CSR matrix (the best of ``reps`` after a warm-up call): what ``export``'s ``auto`` picks
    by. Where CSR starts to pay depends on the machine, the thread count and the batch size
    (docs/performance.md has one CPU's break-evens), so it is measured, not assumed."""
    forms = {"dense": w.contiguous(), "csr": to_csr_int32(w)}
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(w.shape[1], batch_size, generator=gen).to(w.device)
    out = {}
    for name, m in forms.items():
        product = (lambda m=m: torch.mv(m, h[:, 0])) if batch_size == 1 else (lambda m=m: m @ h)
        out[name] = best_seconds(product, reps)
    return out


def model_seconds(model: nn.Module, batch_size: int, reps: int = 5) -> float:
    """Seconds of one forward pass of an exported ``model`` at ``batch_size`` on this machine
    (the best of ``reps`` after a warm-up call): how ``export``'s ``auto`` checks its per-layer
    choice as a whole."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, model.inputs, generator=gen).to(model.device)
    return best_seconds(lambda: model(x), reps)


def best_seconds(call: Callable[[], object], reps: int) -> float:
    """The fastest of ``reps`` timed calls after one untimed warm-up call: the least noisy
    estimate of what ``call`` costs on a machine that other work may slow down."""
    call()
    best = math.inf
    for _ in range(reps):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def to_csr_int32(w: Tensor) -> Tensor:
    """CSR copy of ``w`` with int32 indices (smaller and faster than the default int64)."""
    csr = w.to_sparse_csr()
    return torch.sparse_csr_tensor(
        csr.crow_indices().to(torch.int32),
        csr.col_indices().to(torch.int32),
        csr.values(),
        size=csr.shape,
        check_invariants=False,  # built by torch from a dense tensor: valid by construction
    )


class SparseMLP(nn.Module):
    """Inference-only bias-free ReLU MLP whose layers are dense or CSR weight matrices.

    With any CSR layer the activations flow in (features × batch) layout, ``W @ h`` (the fast
    sparse product in PyTorch; ``x @ W_csr.T`` and COO are slow), and batch 1 uses
    ``torch.mv``. With all-dense layers it is a plain ``F.linear`` stack.
    """

    def __init__(self, weights: list[Tensor]) -> None:
        super().__init__()
        self.weights = weights
        self.any_sparse = any(w.layout == torch.sparse_csr for w in weights)

    @property
    def sizes(self) -> list[int]:
        return [self.weights[0].shape[1], *(w.shape[0] for w in self.weights)]

    @property
    def inputs(self) -> int:
        return self.sizes[0]

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    @property
    def kinds(self) -> list[str]:
        return ["csr" if w.layout == torch.sparse_csr else "dense" for w in self.weights]

    @torch.inference_mode()
    def forward(self, x: Tensor) -> Tensor:
        last = len(self.weights) - 1
        if not self.any_sparse:
            for i, w in enumerate(self.weights):
                x = F.linear(x, w)
                x = x if i == last else F.relu(x)
            return x
        if x.shape[0] == 1:
            v = x[0]
            for i, w in enumerate(self.weights):
                v = torch.mv(w, v)
                v = v if i == last else F.relu(v)
            return v[None]
        h = x.T.contiguous()
        for i, w in enumerate(self.weights):
            h = w @ h
            h = h if i == last else F.relu(h)
        return h.T

    def state(self) -> dict[str, Any]:
        """Plain tensors, strings and lists only: loads with ``torch.load(weights_only=True)``."""
        layers = []
        for w in self.weights:
            if w.layout == torch.sparse_csr:
                layers.append(
                    {
                        "kind": "csr",
                        "crow": w.crow_indices(),
                        "col": w.col_indices(),
                        "values": w.values(),
                        "shape": list(w.shape),
                    }
                )
            else:
                layers.append({"kind": "dense", "weight": w})
        return {"format": FORMAT, "layers": layers}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SparseMLP:
        if state.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} export (format {state.get('format')!r})")
        weights = []
        for layer in state["layers"]:
            if layer["kind"] == "csr":
                # Checked: a crafted file must fail here, not crash a later product.
                weights.append(
                    torch.sparse_csr_tensor(
                        layer["crow"],
                        layer["col"],
                        layer["values"],
                        size=tuple(layer["shape"]),
                        check_invariants=True,
                    )
                )
            else:
                weights.append(layer["weight"])
        return cls(weights)


class CSRLinear(nn.Module):
    """An inference-only linear layer whose weight is an int32 CSR matrix: (W @ xᵀ)ᵀ + b,
    the product PyTorch makes fast (see ``SparseMLP``)."""

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        super().__init__()
        self.weight = to_csr_int32(weight)
        self.bias = bias

    def forward(self, x: Tensor) -> Tensor:
        y = (self.weight @ x.T).T
        return y if self.bias is None else y + self.bias


class ExportedNet(nn.Module):
    """Any model exported for inference (``export`` of a ``stack.MaskedNet``): its masks
    folded into the weights, dead units compacted away, linear layers dense or CSR — conv
    layers stay dense: PyTorch has no sparse convolution, and an unfolded (im2col) CSR
    product beat LeNet-5's dense conv only at batch 1 (and lost at batch ≥ 64) in
    ``benchmarks/bench_sparse.py --model lenet5``. Takes flat inputs, as training data comes."""

    def __init__(self, model: nn.Module, image_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.model = model
        self.image_shape = image_shape

    @property
    def inputs(self) -> int:
        return math.prod(self.image_shape)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def kinds(self) -> list[str]:
        kinds = (nn.Linear, nn.Conv2d, CSRLinear)
        layers = [m for m in self.model.modules() if isinstance(m, kinds)]
        return ["csr" if isinstance(m, CSRLinear) else "dense" for m in layers]

    @torch.inference_mode()
    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.reshape(x.shape[0], *self.image_shape))


def folded(net: MaskedNet) -> nn.Module:
    """A copy of ``net``'s model with its masks multiplied into its parameters."""
    model = copy.deepcopy(net.model)
    with torch.no_grad():
        for name, value in net.masked_params().items():
            model.get_parameter(name).copy_(value)
    return model


def export_net(
    net: MaskedNet, target: str, batch_size: int, timer: Timer, model_timer: ModelTimer
) -> ExportedNet:
    """``export`` of any model: ``dense`` folds the masks, ``compact`` compacts
    (``compaction.compact_net``), ``csr`` and ``auto`` then turn pruned linear layers into
    ``CSRLinear`` (every one, or where measured faster, the whole kept only if faster)."""
    if target == "dense":
        return ExportedNet(folded(net), net.image_shape)
    small = compact_net(net)
    model = folded(small)
    plain = ExportedNet(copy.deepcopy(model), net.image_shape)
    for name, mask in zip(small.layout.names, small.masks(), strict=True):
        layer = model.get_submodule(name.rsplit(".", 1)[0])
        if not isinstance(layer, nn.Linear) or bool(mask.all()) or target == "compact":
            continue
        w = layer.weight.detach().contiguous()
        if target == "csr" or csr_faster(w, batch_size, timer):
            bias = None if layer.bias is None else layer.bias.detach()
            model.set_submodule(name.rsplit(".", 1)[0], CSRLinear(w, bias))
    mixed = ExportedNet(model, net.image_shape)
    slower = "csr" in mixed.kinds and (
        model_timer(mixed, batch_size) > CSR_MARGIN * model_timer(plain, batch_size)
    )
    return plain if target == "auto" and slower else mixed


def export(
    net: MaskedMLP | MaskedNet,
    target: str = "auto",
    batch_size: int = 64,
    timer: Timer = layer_seconds,
    model_timer: ModelTimer = model_seconds,
) -> SparseMLP | ExportedNet:
    """The fastest equivalent of ``net`` for inference at ``batch_size`` (any model: see
    ``export_net`` for the conv nets and a user's module).

    - ``dense``: the masked weights as plain dense matrices (the baseline);
    - ``compact``: dead units dropped (always exact, never more FLOPs);
    - ``csr``: compact, then every pruned layer as int32 CSR;
    - ``auto``: compact, then CSR for each pruned layer that ``timer`` (by default measured
      here, ``layer_seconds``) finds clearly faster than its dense form at this batch size
      (``CSR_MARGIN``); the mixed model is kept only if ``model_timer`` (``model_seconds``)
      finds it clearly faster as a whole than the compact dense one. Layer by layer is not
      enough: one CSR layer moves every layer to the (features × batch) layout, where the
      dense layers run slower than in ``F.linear``, and adds two transposes (per-layer choices
      alone gave 0.90× of dense at weight k = 90 %, batch 10 000, on a 2-core CPU).
    """
    if target not in TARGETS:
        raise ValueError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    if isinstance(net, MaskedNet):
        return export_net(net, target, batch_size, timer, model_timer)
    with torch.no_grad():
        if target == "dense":
            return SparseMLP([(layer.weight * layer.mask).detach() for layer in net.layers])
        small = compact(net)
        plain, weights = [], []
        for layer in small.layers:
            w = (layer.weight * layer.mask).detach().contiguous()
            pruned = not bool(layer.mask.all())
            sparse = pruned and (
                target == "csr" or (target == "auto" and csr_faster(w, batch_size, timer))
            )
            plain.append(w)
            weights.append(to_csr_int32(w) if sparse else w)
    mixed = SparseMLP(weights)
    if target == "auto" and mixed.any_sparse:
        dense = SparseMLP(plain)
        if model_timer(mixed, batch_size) > CSR_MARGIN * model_timer(dense, batch_size):
            return dense
    return mixed


def csr_faster(w: Tensor, batch_size: int, timer: Timer) -> bool:
    seconds = timer(w, batch_size)
    return seconds["csr"] <= CSR_MARGIN * seconds["dense"]


def save_export(model: SparseMLP, path: Path) -> None:
    """Write an exported model atomically (see ``results.save_state_atomic``)."""
    save_state_atomic(Path(path), model.state())


def load_export(path: Path) -> SparseMLP:
    """Load an exported model with ``weights_only=True``: no code runs from the file."""
    return SparseMLP.from_state(torch.load(path, weights_only=True))


def measure_speedups(models: dict[str, nn.Module], x: Tensor, reps: int) -> dict[str, float]:
    """Median seconds of ``models["dense"]`` and, for every other model, its speedup over it.

    Each speedup is the median over rounds of (dense time / model time) within one round, so
    drift of the machine cancels. The order rotates each round and each model's second
    back-to-back call is timed: a slow CSR product leaves the allocator and caches in a state
    that taxed whichever model ran right after it (≈ 8 % at batch 10000).
    """
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(reps):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            models[name](x)
            start = time.perf_counter()
            models[name](x)
            times[name].append(time.perf_counter() - start)
    out = {"dense": statistics.median(times["dense"])}
    for name, t in times.items():
        if name != "dense":
            out[name] = statistics.median(d / f for d, f in zip(times["dense"], t, strict=True))
    return out


def inference_speedup(
    net: MaskedMLP | MaskedNet, batch_size: int = 64, reps: int = 10
) -> dict[str, Any]:
    """Measured speedup of ``export(net, "auto")`` over the dense model at one batch size.

    Cheap enough to run at the end of every job (0.07–0.12 s for the challenge MLP at batch 64 on
    a 2-core CPU), so each config's report row says what its sparsity buys in practice, not
    only in FLOPs. The median of 10 rounds' ratios; 20 cost a sweep of the challenge about
    4 s more (57 pruned jobs), and the report averages the seeds' medians anyway.
    """
    models = {t: export(net, t, batch_size=batch_size) for t in ("dense", "auto")}
    x = torch.randn(batch_size, models["dense"].inputs, generator=torch.Generator().manual_seed(0))
    x = x.to(models["dense"].device)
    t = measure_speedups(models, x, reps)
    return {
        "batch_size": batch_size,
        "dense_ms": 1e3 * t["dense"],
        "speedup": t["auto"],
        "auto_kinds": "/".join(models["auto"].kinds),
    }

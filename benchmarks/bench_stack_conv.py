"""How to run a stack of M LeNet-5-Caffe members as one: ``torch.vmap`` over
``functional_call`` (what ``stack.StackedNet`` does, for any model) against grouped
convolution (the members' channels side by side, ``groups=M``, and batched matmuls for the fc
layers: what a hand-written LeNet-5 stack would do) and against a loop over the members.

In one process, interleaved repetition by repetition, on the same weights and batch: one
training step (masked forward, cross-entropy, backward) of each. The three first give the
same logits (checked: the grouped stack's to 1e-4 of the vmap stack's, or the script stops).
Prints the median step time of each and the ratios to the vmap stack:

    python benchmarks/bench_stack_conv.py                  # M = 1, 5, 20, batch 100, CPU
    python benchmarks/bench_stack_conv.py --device cuda --members 20 --batch 100
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from prunelab.models import LeNet5
from prunelab.stack import MaskedNet, StackedNet

Step = Callable[[], Tensor]


def grouped_logits(weights: list[Tensor], x: Tensor) -> Tensor:
    """The M members' logits (M, B, classes) by grouped convolution: member m's channels are
    block m of one conv with ``groups=M``; the fc layers are batched matmuls.
    ``weights``: LeNet-5's four stacked (masked) weights; ``x``: (B, 1, 28, 28)."""
    w1, w2, w3, w4 = weights
    m, batch = w1.shape[0], x.shape[0]
    h = F.conv2d(x.repeat(1, m, 1, 1), w1.flatten(0, 1), groups=m)
    h = F.max_pool2d(F.relu(h), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, w2.flatten(0, 1), groups=m)), 2)
    h = h.reshape(batch, m, -1).transpose(0, 1)  # (M, B, 800): member m's own channels
    h = F.relu(torch.bmm(h, w3.transpose(1, 2)))
    return torch.bmm(h, w4.transpose(1, 2))


def loop_logits(stack: StackedNet, weights: list[Tensor], x: Tensor) -> Tensor:
    """The members one after another, each a plain ``functional_call`` of the model."""
    names = stack.layout.names
    return torch.stack(
        [
            stack.one({n: w[i] for n, w in zip(names, weights, strict=True)}, x, False)[0]
            for i in range(len(stack))
        ]
    )


def steps(stack: StackedNet, x: Tensor, y: Tensor) -> dict[str, Step]:
    """One training step of each implementation, on the stack's masked weights."""

    def masked() -> list[Tensor]:
        return [layer.weight * layer.mask for layer in stack.layers]

    def loss(logits: Tensor) -> Tensor:
        return F.cross_entropy(logits.flatten(0, 1), y.repeat(logits.shape[0]))

    def run(logits_of: Callable[[list[Tensor]], Tensor]) -> Step:
        def step() -> Tensor:
            stack.zero_grad(set_to_none=True)
            logits = logits_of(masked())
            loss(logits).backward()
            return logits.detach()

        return step

    flat = x.flatten(1)
    return {
        "vmap (StackedNet)": run(
            lambda w: stack.call(w, [lay.mask for lay in stack.layers], flat, None, False)[0]
        ),
        "grouped conv": run(lambda w: grouped_logits(w, x)),
        "loop over members": run(lambda w: loop_logits(stack, w, x)),
    }


def measure(step_of: dict[str, Step], reps: int, sync: Callable[[], None]) -> dict[str, float]:
    """Median seconds per step of each, repetitions interleaved (noise hits all alike)."""
    times: dict[str, list[float]] = {name: [] for name in step_of}
    for _ in range(2):  # warm-up
        for step in step_of.values():
            step()
    sync()
    for _ in range(reps):
        for name, step in step_of.items():
            t0 = time.perf_counter()
            step()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(
        f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, "
        f"batch {args.batch}, median of {args.reps} training steps"
    )
    print(
        "| members | vmap (StackedNet) ms | grouped conv ms | loop ms "
        "| grouped / vmap | loop / vmap |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for m in args.members:
        torch.manual_seed(0)
        members = [MaskedNet(LeNet5(), (1, 28, 28)) for _ in range(m)]
        stack = StackedNet(members).to(device)
        for layer in stack.layers:  # half the weights pruned, as a sparse run would have
            layer.mask.copy_(torch.rand(layer.mask.shape, device=device) > 0.5)
        x = torch.randn(args.batch, 1, 28, 28, device=device)
        y = torch.randint(0, 10, (args.batch,), device=device)
        step_of = steps(stack, x, y)
        outs = {name: step() for name, step in step_of.items()}
        ref = outs["vmap (StackedNet)"]
        for name, out in outs.items():
            if not torch.allclose(out, ref, atol=1e-4, rtol=1e-4):
                raise SystemExit(f"{name} gives other logits than the vmap stack (M={m})")
        t = measure(step_of, args.reps, sync)
        v, g, lp = t["vmap (StackedNet)"], t["grouped conv"], t["loop over members"]
        print(
            f"| {m} | {1e3 * v:.1f} | {1e3 * g:.1f} | {1e3 * lp:.1f} | {g / v:.2f} | {lp / v:.2f} |"
        )


if __name__ == "__main__":
    main()

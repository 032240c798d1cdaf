"""SNIP (Lee et al. 2019) at initialisation inside a plain PyTorch training loop: score
every weight's connection sensitivity on one batch, keep 2 % of them, train the sparse net.

    python examples/snip_plain_loop.py           # 20 000 MNIST images, seconds on 2 CPU cores
    python examples/snip_plain_loop.py --samples 2000 --epochs 1
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

import prunelab
from prunelab.data import load_dataset


def lenet_300_100() -> nn.Module:
    """LeNet-300-100, SNIP's smallest network."""
    return nn.Sequential(
        nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20_000, help="training images")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sparsity", type=float, default=0.98)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    d = load_dataset("mnist", "data")  # offline; your own code: any (x, y) batches
    x, y = d.train_x[: args.samples].float().div(255), d.train_y[: args.samples]
    x_test, y_test = d.test_x.float().div(255), d.test_y

    model = lenet_300_100()
    # SNIP scores |w · dL/dw| on one batch of 100 and keeps the largest, over all layers at
    # once (as the paper does); the output layer is pruned too
    prunelab.prune(
        model, args.sparsity, criterion="snip", allocation="global", data=(x[:100], y[:100]),
        prune_output=True,
    )  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(args.epochs):
        for i in range(0, len(x), 100):
            opt.zero_grad()
            F.cross_entropy(model(x[i : i + 100]), y[i : i + 100]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    report = prunelab.sparsity_report(model)
    print(f"test accuracy {acc:.4f} with {report.params_nonzero} of {report.params_total} "
          f"weights ({report.global_sparsity:.4f} sparse)")  # fmt: skip
    print(report)


if __name__ == "__main__":
    main()

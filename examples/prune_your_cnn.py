"""Prune a CNN you wrote with prunelab's API: train it, prune 90 % of its weights by
magnitude, fine-tune, then see what is left and what it buys.

    python examples/prune_your_cnn.py            # all of MNIST, about 20 s on 2 CPU cores
    python examples/prune_your_cnn.py --samples 2000 --epochs 1
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

import prunelab
from prunelab.data import load_dataset


class MyCNN(nn.Module):
    """Your model: nothing prunelab-specific in it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.fc1 = nn.Linear(32 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def mnist(samples: int) -> tuple[torch.Tensor, ...]:
    """MNIST images (N, 1, 28, 28) in [0, 1] and labels, as prunelab finds it offline (in
    your own code: torchvision's MNIST, or any DataLoader of (x, y))."""
    d = load_dataset("mnist", "data")
    images = [t[:samples].float().div(255).view(-1, 1, 28, 28) for t in (d.train_x, d.test_x)]
    return images[0], d.train_y[:samples], images[1], d.test_y[:samples]


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            F.cross_entropy(model(x[i : i + 64]), y[i : i + 64]).backward()
            opt.step()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (model.eval()(x).argmax(1) == y).float().mean().item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=60_000, help="training images")
    parser.add_argument("--epochs", type=int, default=2, help="epochs before and after pruning")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    x, y, x_test, y_test = mnist(args.samples)
    model = MyCNN()
    train(model.train(), x, y, args.epochs)
    print(f"dense:      test accuracy {accuracy(model, x_test, y_test):.4f}")

    # 90 % of each hidden layer's weights by |w| (the output layer fc2 is kept whole)
    prunelab.prune(model, 0.9, criterion="magnitude", example_inputs=x[:1])
    print(f"pruned:     test accuracy {accuracy(model, x_test, y_test):.4f}")
    train(model.train(), x, y, args.epochs)  # the masks hold through training
    print(f"fine-tuned: test accuracy {accuracy(model, x_test, y_test):.4f}")
    print(prunelab.sparsity_report(model))

    # the state_dict is your class's own: it loads into an unpruned MyCNN
    plain = MyCNN()
    plain.load_state_dict(model.state_dict())
    print(f"reloaded:   test accuracy {accuracy(plain, x_test, y_test):.4f}")
    fast = prunelab.export(model, "auto")  # compacted, sparse layers where measured faster
    print(
        f"exported:   test accuracy {accuracy(fast, x_test, y_test):.4f} ({'/'.join(fast.kinds)})"
    )


if __name__ == "__main__":
    main()

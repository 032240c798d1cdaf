"""Add prunelab's pruning to a Lightning project you already have: one callback, here
Zhu & Gupta's gradual pruning to 95 % with LAMP's layer-adaptive budget.

    python examples/lightning_callback.py        # 20 000 MNIST images, seconds on 2 CPU cores
    python examples/lightning_callback.py --samples 2000 --epochs 3
"""

from __future__ import annotations

import argparse
import tempfile

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import prunelab
from prunelab.data import load_dataset
from prunelab.lightning import Pruning


class LitClassifier(pl.LightningModule):
    """Your LightningModule, unchanged: prunelab never asks it for anything."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
            nn.Linear(100, 10),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        self.log("test_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def mnist(samples: int, train: bool) -> DataLoader:
    """MNIST as prunelab finds it offline (in your project: your own DataLoader)."""
    d = load_dataset("mnist", "data")
    x, y = (d.train_x, d.train_y) if train else (d.test_x, d.test_y)
    images = x[:samples].float().div(255).view(-1, 1, 28, 28)
    return DataLoader(TensorDataset(images, y[:samples]), batch_size=100, shuffle=train)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20_000, help="images (test: at most 10 000)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs in all")
    args = parser.parse_args(argv)
    pl.seed_everything(0, verbose=False)
    # 1 dense epoch, a cubic ramp to 95 % over the next half, then fine-tuning with fixed masks
    ramp = max(1, args.epochs // 2)
    pruning = Pruning(
        0.95, criterion="magnitude", allocation="lamp", schedule="gradual",
        module="model", epochs=1, ramp_epochs=ramp, finetune_epochs=args.epochs - 1 - ramp,
    )  # fmt: skip
    model = LitClassifier()
    with tempfile.TemporaryDirectory() as logs:
        trainer = pl.Trainer(
            max_epochs=args.epochs, callbacks=[pruning], logger=pl.loggers.CSVLogger(logs),
            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        )  # fmt: skip
        trainer.fit(model, mnist(args.samples, train=True))
        [result] = trainer.test(model, mnist(args.samples, train=False), verbose=False)
    report = prunelab.sparsity_report(model.model)
    print(f"test accuracy {result['test_acc']:.4f} at global sparsity "
          f"{report.global_sparsity:.4f}")  # fmt: skip
    print(report)


if __name__ == "__main__":
    main()

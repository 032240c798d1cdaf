"""What the framework costs: a Lightning epoch vs a bare PyTorch epoch, and mask-computation time.

Both loops train the same MaskedMLP with Adam on the same MNIST training split at the same
batch size, and both track loss and accuracy. Epochs are interleaved (bare, Lightning, bare,
…) so drift in machine load hits both alike; the medians and their ratio come from one run.

    python scripts/bench_overhead.py            # batch 512, 3 timed epochs each
    python scripts/bench_overhead.py --reps 5 --limit 20000

Goals: Lightning / bare ≤ 1.10; all-layer masks ≤ 25 ms (weight), ≤ 2 ms (neuron).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from prunelab.config import strategy_method
from prunelab.config.schema import OneshotSchedule, OptimConfig
from prunelab.data import BatchLoader, load_dataset, make_splits
from prunelab.module import PruningModule
from prunelab.nets import MaskedMLP, StackedMLP
from prunelab.selection import compute_masks

SIZES = [784, 1000, 1000, 500, 200, 10]


def bare_epoch(net: MaskedMLP, opt: torch.optim.Optimizer, loader: BatchLoader) -> float:
    """One plain PyTorch epoch, tracking loss and accuracy like the LightningModule does."""
    start = time.perf_counter()
    correct = torch.zeros((), dtype=torch.long)
    total_loss = torch.zeros(())
    for x, y in loader:
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        correct += (logits.argmax(1) == y).sum()
        total_loss += loss.detach() * len(y)
    _ = (correct.item(), total_loss.item())
    return time.perf_counter() - start


class EpochTimer(pl.Callback):
    """Wall time of each training epoch, excluding trainer set-up and tear-down."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.times.append(time.perf_counter() - self._start)


def lightning_epoch(module: PruningModule, loader: BatchLoader) -> float:
    """One epoch through ``Trainer.fit`` as ``prunelab.train`` configures it (no validation)."""
    timer = EpochTimer()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=loader)
    return timer.times[0]


def mask_times(reps: int = 20) -> dict[str, float]:
    """Median milliseconds to compute the masks of all four hidden layers, per strategy."""
    torch.manual_seed(0)
    weights = [layer.weight.detach() for layer in MaskedMLP(SIZES).layers[:-1]]
    out = {}
    for strategy in ("weight", "neuron"):
        compute_masks(strategy_method(strategy), weights, 0.9)  # warm-up
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            compute_masks(strategy_method(strategy), weights, 0.9)
            times.append(time.perf_counter() - start)
        out[strategy] = 1000 * statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--reps", type=int, default=3, help="timed epochs per loop")
    parser.add_argument("--limit", type=int, default=None, help="cap the training split")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)

    raw = load_dataset("mnist", args.data_dir)
    splits = make_splits(raw, 0.1307, 0.3081, limit=args.limit)
    loader = BatchLoader(*splits.train, args.batch_size, shuffle=True, seed=0)
    torch.manual_seed(0)
    net = MaskedMLP(SIZES)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    constant = OptimConfig(lr_schedule="constant")  # the bare loop's rate
    module = PruningModule(StackedMLP([MaskedMLP(SIZES)]), constant, OneshotSchedule())

    bare_epoch(net, opt, loader)  # warm-up both paths
    lightning_epoch(module, loader)
    bare, light = [], []
    for _ in range(args.reps):
        bare.append(bare_epoch(net, opt, loader))
        light.append(lightning_epoch(module, loader))
    b, lt = statistics.median(bare), statistics.median(light)
    masks = mask_times()

    n = len(splits.train[0])
    print(
        f"# bench_overhead: {n} samples, batch {args.batch_size}, {args.reps} epochs each, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"bare PyTorch epoch      {b:7.3f} s   (all: {', '.join(f'{t:.3f}' for t in bare)})")
    print(f"Lightning epoch         {lt:7.3f} s   (all: {', '.join(f'{t:.3f}' for t in light)})")
    print(f"ratio Lightning / bare  {lt / b:7.3f}     goal ≤ 1.10")
    print(f"weight masks, 4 layers  {masks['weight']:7.2f} ms  goal ≤ 25 ms")
    print(f"neuron masks, 4 layers  {masks['neuron']:7.2f} ms  goal ≤ 2 ms")


if __name__ == "__main__":
    main()

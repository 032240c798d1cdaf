"""What prunelab costs per epoch: a real run against a bare PyTorch loop doing the same work.

- **prunelab**: ``run.run_jobs`` on the challenge's config (``experiment=challenge``,
  ``strategy=weight sparsity=0.9``, no dense cache, ``schedule.epochs=N``), built as
  ``python -m prunelab.train`` builds it: the Trainer with the pruning callback, the epoch
  summary, weight averaging, the CSV logger, the per-step learning-rate schedule and
  ``trainer.deterministic=true``. Its epoch is the result's ``epoch_times_s``: from one
  epoch's start to the next one's, so training, validation, callbacks, the log row and the
  learning-rate step are all in it.
- **bare**: a loop written here that does the same work: the same network, initialisation,
  data, batch order and batch size, Adam at the preset's rate, loss and accuracy tracked on
  the device, the running mean of the weights over the preset's averaged epochs, val and
  test evaluated after every epoch (in prunelab's blocks, ``module.forward_in_blocks``: the
  same arithmetic, so the ratio is the framework's cost alone), one host read per epoch.
  Timed over the same span: the whole epoch.

Fits alternate (bare, prunelab, bare, …) so drift of the machine hits both alike; the medians
over every epoch but each fit's first, and their ratio, come from one run. Then the mask
selection of all four hidden layers (one model, k = 0.9) is timed per strategy.

    python benchmarks/bench_overhead.py                 # full MNIST, 4 epochs per fit, 3 rounds
    python benchmarks/bench_overhead.py --limit 20000 --epochs 3

Goals: prunelab / bare ≤ 1.10; all-layer masks ≤ 25 ms (weight), ≤ 2 ms (neuron).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from prunelab.config import CONF_DIR, load, strategy_method
from prunelab.data import BatchLoader, load_dataset, make_splits
from prunelab.functional import member_losses
from prunelab.module import forward_in_blocks
from prunelab.nets import MaskedMLP, seeded_mlp
from prunelab.run import run_jobs
from prunelab.selection import compute_masks

SIZES = [784, 1000, 1000, 500, 200, 10]


def config(out: Path, epochs: int, args: argparse.Namespace) -> DictConfig:
    """The challenge job prunelab trains: weight pruning at k = 0.9, ``epochs`` dense epochs."""
    overrides = [
        "experiment=challenge", "strategy=weight", "sparsity=0.9", "seed=0",
        f"schedule.epochs={epochs}", "dense_cache=false", "inference_batch_size=null",
        f"paths.data_dir={args.data_dir}", f"paths.cache_dir={out / 'cache'}",
    ]  # fmt: skip
    overrides += [f"data.limit={args.limit}"] if args.limit else []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out / "job")
    return cfg


def prunelab_epochs(out: Path, epochs: int, args: argparse.Namespace) -> list[float]:
    """Seconds of every epoch but the first of one real run (its ``epoch_times_s``)."""
    [result] = run_jobs([config(out, epochs, args)])
    if isinstance(result, BaseException):
        raise result
    return list(result["epoch_times_s"])[1:]


class Bare:
    """The bare loop: the run's network and data, Adam, averaging, evaluation, no framework."""

    def __init__(self, cfg: DictConfig, epochs: int) -> None:
        job = load(cfg)
        raw = load_dataset(job.data.name, str(job.paths.data_dir))
        d = job.data
        splits = make_splits(raw, d.mean, d.std, d.limit, torch.device("cpu"))
        self.train = BatchLoader(*splits.train, d.batch_size, shuffle=True, seeds=[job.seed])
        self.evals = [BatchLoader(*split, d.eval_batch_size) for split in (splits.val, splits.test)]
        self.net = seeded_mlp(job.model.sizes, job.seed)
        self.weights = [layer.weight for layer in self.net.layers]
        o = job.optim
        self.opt = torch.optim.Adam(self.weights, lr=o.lr, weight_decay=o.weight_decay)
        self.averaged_from = epochs - o.average_epochs(epochs)
        self.mean: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, w in enumerate(self.weights):
            x = torch.nn.functional.linear(x, w)
            if i < len(self.weights) - 1:
                x = torch.relu(x)
        return x

    def epoch(self, e: int) -> float:
        """One epoch: train, average, evaluate val and test, read the figures; seconds."""
        start = time.perf_counter()
        self.train.set_epoch(e)
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.long)
        for x, y in self.train:
            logits = self.forward(x)
            loss = member_losses(logits[None], y)[0]
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            loss_sum += loss.detach().double() * len(y)
            correct += (logits.argmax(-1) == y).sum()
        with torch.no_grad():
            if e >= self.averaged_from:
                n = e - self.averaged_from + 1
                if not self.mean:
                    self.mean = [w.detach().clone() for w in self.weights]
                for mean, w in zip(self.mean, self.weights, strict=True):
                    mean.add_((w - mean) / n)
            hits = [
                sum((forward_in_blocks(self.forward, x).argmax(-1) == y).sum() for x, y in loader)
                for loader in self.evals
            ]
        _ = (loss_sum.item(), correct.item(), [int(h) for h in hits])
        return time.perf_counter() - start


def bare_epochs(out: Path, epochs: int, args: argparse.Namespace) -> list[float]:
    """Seconds of every epoch but the first of the bare loop over ``epochs`` epochs."""
    bare = Bare(config(out, epochs, args), epochs)
    return [bare.epoch(e) for e in range(epochs)][1:]


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
    parser.add_argument("--epochs", type=int, default=4, help="per fit; the first is warm-up")
    parser.add_argument("--reps", type=int, default=3, help="alternating rounds")
    parser.add_argument("--limit", type=int, default=None, help="data.limit (default: all)")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: each fit's first epoch is left out")
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)

    bare, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            bare += bare_epochs(Path(tmp) / f"bare{rep}", args.epochs, args)
            ours += prunelab_epochs(Path(tmp) / f"prunelab{rep}", args.epochs, args)
    b, o = statistics.median(bare), statistics.median(ours)
    masks = mask_times()

    limit = f"data.limit={args.limit}" if args.limit else "all of MNIST's 50k training images"
    print(
        f"# bench_overhead: challenge job (weight, k = 0.9, dense phase), {limit}, "
        f"{args.epochs} epochs per fit (first left out), {args.reps} round(s), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"bare PyTorch epoch      {b:7.3f} s   (all: {', '.join(f'{t:.3f}' for t in bare)})")
    print(f"prunelab epoch          {o:7.3f} s   (all: {', '.join(f'{t:.3f}' for t in ours)})")
    print(f"ratio prunelab / bare   {o / b:7.3f}     goal ≤ 1.10")
    print(f"weight masks, 4 layers  {masks['weight']:7.2f} ms  goal ≤ 25 ms")
    print(f"neuron masks, 4 layers  {masks['neuron']:7.2f} ms  goal ≤ 2 ms")


if __name__ == "__main__":
    main()

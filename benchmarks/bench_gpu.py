"""What prunelab's stacked epoch costs against a bare stacked PyTorch loop doing the same work.

For M = 20 and M = 60 members (weight and unit pruning alternately, the challenge's ten
sparsities in turn, a new seed every 20 members, the iterative schedule of
``experiment=seed_iterative``: M = 60 is its whole 3-seed protocol as one stack), in one
process, on the same data and device:

- **prunelab**: ``run.run_jobs`` on M configs, as ``hydra/launcher=stacked`` runs them, with
  the protocol's checkpoint cadence (``last.ckpt`` every 5 epochs, within the default
  ``checkpoint_max_share``); its epoch time is the median of the result's ``epoch_times_s``
  (first epoch left out), each from one epoch's start to the next one's: training,
  validation, pruning, callbacks, the log row, the learning-rate step and any checkpoint;
- **bare**: a loop written here: one (M, out, in) weight per layer, masks multiplied in
  forward, Adam, the cosine learning rate, batch 512 from data on the device (with more than
  one seed in the stack, each member's batch gathered by its seed's order); after each
  epoch's last step every member is pruned back to its k by prunelab's own selection
  (``selection.stacked_masks``, one call per strategy for all hidden layers, as the pruning
  callback calls it) and its Adam moments zeroed where pruned; then val and test are
  evaluated, one host read per epoch. Masks are lifted again at the next epoch's start.
  Its epoch is timed whole, the same span. It does prunelab's arithmetic, no more and no
  less: no mask product while the masks are lifted, evaluation in prunelab's blocks
  (``module.forward_in_blocks``), so the ratio is the framework's cost alone.

So the ratio prunelab / bare is the framework's overhead on a training epoch of the seed's
protocol. On a CUDA device the model is the challenge MLP on all of MNIST; on a CPU the
default is a tiny model (784-16-16-10) on 10k samples per split, where compute is small and
the ratio shows the per-step and per-epoch overhead (goal ≤ 1.3). The last line is
``ratio <worst ratio>``.

    python benchmarks/bench_gpu.py                                # CPU proxy
    python benchmarks/bench_gpu.py --device cuda --tf32            # a GPU, the challenge MLP
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict
from torch import Tensor

from prunelab.config import CONF_DIR, strategy_method
from prunelab.data import BatchLoader, load_dataset, make_splits
from prunelab.module import forward_in_blocks
from prunelab.nets import MaskedMLP
from prunelab.run import run_jobs
from prunelab.selection import stacked_masks

KS = [0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]
STRATEGIES = ("weight", "neuron")
CHALLENGE_SIZES = [784, 1000, 1000, 500, 200, 10]
TINY_SIZES = [784, 16, 16, 10]


def member_plan(m: int) -> list[tuple[str, float, int]]:
    """(strategy, k, seed) of each of ``m`` members: the strategies alternate, the ks cycle,
    and every 20 members take the next seed, so M = 60 is the seed's whole protocol (20
    configs × 3 seeds) in one stack, each seed with its own batch order."""
    return [(STRATEGIES[i % 2], KS[(i // 2) % len(KS)], i // 20) for i in range(m)]


def configs(out: Path, m: int, epochs: int, args: argparse.Namespace) -> list[DictConfig]:
    """The ``m`` stacked jobs prunelab trains: the seed protocol's settings, ``epochs`` epochs."""
    sizes = ",".join(map(str, args.sizes))
    overrides = [
        "schedule=iterative", "schedule.epochs=0", f"schedule.ramp_epochs={epochs}",
        "schedule.finetune_epochs=0", f"model.sizes=[{sizes}]",
        "trainer=gpu" if args.device == "cuda" else "trainer=cpu", "dense_cache=false",
        "save_model=false", "inference_batch_size=null", "checkpoint_every_n_epochs=5",
        f"paths.cache_dir={out / 'cache'}", f"paths.data_dir={args.data_dir}",
    ]  # fmt: skip
    overrides += [f"data.limit={args.limit}"] if args.limit else []
    overrides += ["float32_matmul_precision=high"] if args.tf32 else []
    cfgs = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for i, (strategy, k, seed) in enumerate(member_plan(m)):
            member = [f"strategy={strategy}", f"sparsity={k}", f"seed={seed}"]
            cfg = compose("config", overrides=[*overrides, *member])
            with open_dict(cfg):
                cfg.paths.output_dir = str(out / f"m{i}_{strategy}_{k}")
            cfgs.append(cfg)
    return cfgs


def prunelab_epoch(out: Path, m: int, epochs: int, args: argparse.Namespace) -> tuple[float, float]:
    """Median seconds per epoch (first left out) of prunelab training ``m`` stacked jobs, and
    the share of its fit spent saving ``last.ckpt`` (inside the epoch times)."""
    results = run_jobs(configs(out, m, epochs, args))
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]
    first = results[0]
    return float(first["epoch_time_s"]), first["checkpoint_time_s"] / first["fit_time_s"]


class Bare:
    """The bare stacked loop: parameters, masks, Adam and the epoch of the seed protocol."""

    def __init__(self, m: int, sizes: Sequence[int], epochs: int, device: torch.device) -> None:
        torch.manual_seed(0)
        nets = [MaskedMLP(sizes) for _ in range(m)]
        self.weights = [
            torch.stack([n.layers[i].weight.detach() for n in nets]).to(device).requires_grad_()
            for i in range(len(sizes) - 1)
        ]
        self.masks = [torch.ones_like(w, dtype=torch.bool) for w in self.weights]
        self.full = True  # masks lifted: the forward skips them, as prunelab's does
        fused = device.type == "cuda"
        self.opt = torch.optim.Adam(self.weights, lr=1e-3, fused=fused)
        cosine = lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs))  # noqa: E731
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, cosine)
        plan = member_plan(m)
        self.groups = {
            s: torch.tensor([i for i, (st, _, _) in enumerate(plan) if st == s], device=device)
            for s in STRATEGIES
        }
        self.ks = [k for _, k, _ in plan]
        self.seeds = [seed for _, _, seed in plan]

    def forward(self, x: Tensor) -> Tensor:
        for i, (w, mask) in enumerate(zip(self.weights, self.masks, strict=True)):
            x = torch.matmul(x, (w if self.full else w * mask).transpose(1, 2))
            if i < len(self.weights) - 1:
                x = F.relu(x)
        return x

    @torch.no_grad()
    def prune(self) -> None:
        """Every member back to its k in each hidden layer, selected by prunelab's own
        ``selection.stacked_masks`` (one call per strategy, all hidden layers at once, as the
        pruning callback does); its Adam moments zeroed there."""
        hidden = self.weights[:-1]
        for strategy, idx in self.groups.items():
            if len(idx) == 0:
                continue
            members = idx.tolist()
            keep = stacked_masks(
                strategy_method(strategy),
                [w[idx] for w in hidden],
                [self.ks[i] for i in members],
                [self.seeds[i] for i in members],
            )
            for mask, new in zip(self.masks[:-1], keep, strict=True):
                mask[idx] = new
        for w, mask in zip(hidden, self.masks[:-1], strict=True):
            w.mul_(mask)
            for value in self.opt.state[w].values():
                if value.shape == w.shape:
                    value.mul_(mask)

    def epoch(self, train: BatchLoader, evals: Sequence[BatchLoader]) -> float:
        """One epoch: lift masks, train, prune, evaluate; seconds, read after a host sync."""
        start = time.perf_counter()
        for mask in self.masks:
            mask.fill_(True)
        self.full = True
        m = self.weights[0].shape[0]
        correct = torch.zeros(m, dtype=torch.long, device=self.weights[0].device)
        for x, y in train:
            logits = self.forward(x)
            targets = y.reshape(-1) if y.dim() == 2 else y.repeat(m)
            losses = (
                F.cross_entropy(logits.flatten(0, 1), targets, reduction="none").view(m, -1).mean(1)
            )
            self.opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            self.opt.step()
            correct += (logits.argmax(-1) == y).sum(-1)
        self.sched.step()
        self.prune()
        self.full = False
        with torch.no_grad():
            for loader in evals:
                for x, y in loader:
                    logits = forward_in_blocks(self.forward, x)
                    correct += (logits.argmax(-1) == y).sum(-1)
        correct.tolist()
        return time.perf_counter() - start


def bare_epoch(m: int, epochs: int, args: argparse.Namespace, device: torch.device) -> float:
    """Median seconds per epoch (first left out) of the bare loop over ``epochs`` epochs."""
    raw = load_dataset("mnist", args.data_dir)
    splits = make_splits(raw, 0.1307, 0.3081, args.limit, device)
    bare = Bare(m, args.sizes, epochs, device)
    times = []
    for e in range(epochs):
        train = BatchLoader(*splits.train, 512, shuffle=True, seeds=bare.seeds)
        train.set_epoch(e)
        evals = [BatchLoader(*splits.val, 10000), BatchLoader(*splits.test, 10000)]
        times.append(bare.epoch(train, evals))
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default=None, help="default: cuda if any"
    )
    parser.add_argument("--members", type=int, nargs="+", default=[20, 60])
    parser.add_argument("--epochs", type=int, default=None, help="per run; first is warm-up")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="model.sizes")
    parser.add_argument("--limit", type=int, default=None, help="data.limit (CPU default 10000)")
    parser.add_argument("--reps", type=int, default=3, help="alternating rounds; medians")
    parser.add_argument("--tf32", action="store_true", help="float32_matmul_precision=high")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA device is visible; use --device cpu")
    gpu = args.device == "cuda"
    args.sizes = args.sizes or (CHALLENGE_SIZES if gpu else TINY_SIZES)
    args.limit = args.limit if args.limit is not None or gpu else 10000
    args.epochs = args.epochs or (6 if gpu else 4)
    if args.tf32:
        torch.set_float32_matmul_precision("high")
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    device = torch.device(args.device)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.members:
            ours, bare, saving = [], [], []
            for rep in range(args.reps):  # alternate, so drift hits both alike
                bare.append(bare_epoch(m, args.epochs, args, device))
                epoch, share = prunelab_epoch(Path(tmp) / f"m{m}_{rep}", m, args.epochs, args)
                ours.append(epoch)
                saving.append(share)
            rows.append((m, statistics.median(bare), statistics.median(ours), max(saving)))

    name = torch.cuda.get_device_name() if gpu else f"CPU, {torch.get_num_threads()} threads"
    sizes = "-".join(map(str, args.sizes))
    limit = f", data.limit={args.limit}" if args.limit else ""
    tf32 = ", TF32" if args.tf32 else ""
    print(
        f"# bench_gpu: {name}, torch {torch.__version__}, sizes {sizes}{limit}{tf32}, "
        f"iterative, {args.epochs} epochs per run (first left out), {args.reps} round(s)"
    )
    header = f"{'members':>8} {'bare s/epoch':>13} {'prunelab s/epoch':>17} {'ratio':>7}"
    print(f"{header} {'checkpoint share':>17}")
    for m, b, o, c in rows:
        print(f"{m:>8} {b:>13.4f} {o:>17.4f} {o / b:>7.2f} {100 * c:>16.1f}%")
    print(f"ratio {max(o / b for _, b, o, _ in rows):.2f}")


if __name__ == "__main__":
    main()

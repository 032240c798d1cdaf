"""SNIP on LeNet-300-100 as the authors' released code does it, independent of prunelab.

Lee et al. (2019) report 1.6 % / 2.4 % test error at 95 % / 98 % of LeNet-300-100's weights
removed; prunelab's SNIP (docs/results/papers.md) stays near 2.1 % / 3.1 %. This script
re-implements, step by step and in plain PyTorch, what namhoonlee/snip-public (the code the
paper points to: snip/{mnist,dataset,network,model,prune,train,test}.py) does, so that the gap
can be put on prunelab or on the published number:

- data: pixels / 255, standardised by the training set's one mean and std; 10 % of the
  60 000 training images (a seeded shuffle) held out, training on the other 54 000;
- LeNet-300-100 *with* biases (zeros), weights by TF's ``variance_scaling_initializer``
  (fan-in, scale 1, normal truncated at two deviations); two independent draws: the mask is
  computed on one (``weights_bp``), the other is trained (``weights_ap``);
- SNIP: |∂L/∂c| for a multiplicative mask c on every weight *and every bias*, on one batch of
  100, normalised, the top ``round(N · (1 − k))`` kept over all of them (N counts the biases).
  The biases start at 0, so their score is 0 and they are all pruned: the released code
  trains a bias-free net. ``--keep-biases`` leaves them out of the mask instead (the net the
  paper's text describes);
- training: loss + 0.00025 · Σ (c · w)², SGD with momentum 0.9 from 0.1, × 0.1 every 25 000
  iterations, 250 000 iterations of batches of 100;
- the reported error: snip/test.py prints ``1 − max`` test accuracy over the checkpoints
  the run kept. snip/train.py saves every 1 000 iterations with ``tf.train.Saver()``,
  whose default ``max_to_keep=5`` leaves the last five (iterations 246 000–250 000, at a
  rate of 1e-10): the published reading is the best of those (``last5``), in effect the
  last. Also given (``readings``): the last checkpoint, the best of all 250 (chosen on the
  test set: an upper bound no protocol should report) and the one at the best validation
  accuracy.

    python studies/snip_reference/snip_reference.py --sparsity 0.98 --seed 0 --out snip98_s0.json

One thread: about 2.1 ms per iteration, 9 min a run, on the 2-core CPU of docs/results/index.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from prunelab.data import load_dataset
from prunelab.report.studytables import pm  # the studies' tables' mean ± std

SIZES = (784, 300, 100, 10)
# TF 1.x's truncated normal keeps ±2 deviations; dividing by this restores the deviation.
TRUNCATED_STD = 0.87962566103423978


def standardised(raw_train: Tensor, raw_test: Tensor) -> tuple[Tensor, Tensor]:
    """snip/mnist.py: pixels / 255, minus the training set's mean, over its std (scalars)."""
    train = raw_train.double() / 255
    test = raw_test.double() / 255
    mean, std = train.mean(), train.std(unbiased=False)
    return ((train - mean) / std).float(), ((test - mean) / std).float()


def variance_scaling(sizes: tuple[int, ...], gen: torch.Generator) -> list[Tensor]:
    """snip/network.py's ``tf.variance_scaling_initializer()`` per (in, out) weight; zero
    biases after them, in the order w1, w2, w3, b1, b2, b3."""
    weights = []
    for n_in, n_out in itertools.pairwise(sizes):
        std = math.sqrt(1.0 / n_in) / TRUNCATED_STD
        w = torch.empty(n_in, n_out)
        torch.nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std, generator=gen)
        weights.append(w)
    return weights + [torch.zeros(n) for n in sizes[1:]]


def forward(params: list[Tensor], x: Tensor) -> Tensor:
    """snip/network.py LeNet300.forward_pass: ReLU(x W1 + b1) … x W3 + b3."""
    n = len(params) // 2
    for i in range(n):
        x = x @ params[i] + params[n + i]
        if i < n - 1:
            x = F.relu(x)
    return x


def snip_masks(params: list[Tensor], x: Tensor, y: Tensor, sparsity: float,
               keep_biases: bool) -> list[Tensor]:  # fmt: skip
    """snip/model.py get_sparse_mask + create_sparse_mask: one global top-k of |∂L/∂c|.

    The gradient with respect to a mask of ones at c = 1 is w · ∂L/∂w, so a zero bias scores 0.
    """
    n = len(params) // 2
    masked = params if not keep_biases else params[:n]
    ones = [torch.ones_like(p, requires_grad=True) for p in masked]
    applied = [p * c for p, c in zip(masked, ones, strict=True)] + list(params[len(masked) :])
    loss = F.cross_entropy(forward(applied, x), y)
    grads = torch.autograd.grad(loss, ones)
    scores = torch.cat([g.abs().flatten() for g in grads])
    scores = scores / scores.sum()
    kappa = round(scores.numel() * (1.0 - sparsity))
    keep = torch.zeros_like(scores)
    keep[torch.topk(scores, kappa, sorted=True).indices] = 1.0
    masks = list(torch.split(keep, [p.numel() for p in masked]))
    masks = [m.view_as(p) for m, p in zip(masks, masked, strict=True)]
    return masks + [torch.ones_like(p) for p in params[len(masked) :]]


def accuracy(params: list[Tensor], masks: list[Tensor], x: Tensor, y: Tensor) -> float:
    """Share of ``x`` classified as ``y`` by the masked net (the whole split in one batch)."""
    with torch.no_grad():
        logits = forward([p * m for p, m in zip(params, masks, strict=True)], x)
        return float((logits.argmax(1) == y).float().mean())


def readings(history: list[list[float]]) -> dict[str, float]:
    """Test accuracy of a run read four ways from its checkpoints ``[iteration, val, test]``:
    ``last5``, the best of the last five (what snip/test.py sees, ``Saver``'s default
    ``max_to_keep``); ``last``; ``max`` over all of them (chosen on the test set); and
    ``at_best_val``, at the checkpoint of the best validation accuracy (the first of ties)."""
    best_val = max(history, key=lambda h: h[1])
    return {
        "last5": max(h[2] for h in history[-5:]),
        "last": history[-1][2],
        "max": max(h[2] for h in history),
        "at_best_val": best_val[2],
    }


# The table's columns: reading → header.
COLUMNS = {
    "last5": "error %, as published (best of the last 5 checkpoints)",
    "last": "error %, last checkpoint",
    "max": "error %, best of all checkpoints (chosen on test)",
    "at_best_val": "error %, at best validation",
}


def run(sparsity: float, seed: int, keep_biases: bool, iterations: int, boundary: int,
        check: int) -> dict[str, object]:  # fmt: skip
    """One run of the released procedure: score, mask, train ``iterations`` steps at a rate
    × 0.1 every ``boundary``, a validation and test reading every ``check`` steps. ``seed``
    draws the split, the batch order and both initial weights."""
    raw = load_dataset("mnist", os.environ.get("PRUNELAB_DATA_DIR", "data"))
    train_x, test_x = standardised(raw.train_x, raw.test_x)
    train_y, test_y = raw.train_y.long(), raw.test_y.long()
    rand = np.random.RandomState(seed)
    order = rand.permutation(len(train_x))
    n_val = int(len(train_x) * 0.1)  # snip/dataset.py split_dataset
    val_idx, train_idx = torch.from_numpy(order[:n_val]), torch.from_numpy(order[n_val:])
    val_x, val_y = train_x[val_idx], train_y[val_idx]
    train_x, train_y = train_x[train_idx], train_y[train_idx]

    gen = torch.Generator().manual_seed(seed)
    before = variance_scaling(SIZES, gen)  # weights_bp: only scored
    after = variance_scaling(SIZES, gen)  # weights_ap: trained

    def batches():
        while True:
            for i in torch.from_numpy(rand.permutation(len(train_x))).split(100):
                if len(i) == 100:
                    yield train_x[i], train_y[i]

    stream = batches()
    masks = snip_masks(before, *next(stream), sparsity, keep_biases)
    params = [p.clone().requires_grad_(True) for p in after]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    history = []
    t0 = time.perf_counter()
    for itr in range(iterations):
        for group in opt.param_groups:
            group["lr"] = 0.1 * 0.1 ** (itr // boundary)  # piecewise_constant
        x, y = next(stream)
        final = [p * m for p, m in zip(params, masks, strict=True)]
        loss = F.cross_entropy(forward(final, x), y)
        loss = loss + 0.00025 * sum((w * w).sum() for w in final)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (itr + 1) % check == 0:
            history.append([itr + 1, accuracy(params, masks, val_x, val_y),
                            accuracy(params, masks, test_x, test_y)])  # fmt: skip
    n_layers = len(SIZES) - 1
    kept = [int(m.sum()) for m in masks]
    return {
        "sparsity": sparsity,
        "seed": seed,
        "keep_biases": keep_biases,
        "iterations": iterations,
        **{f"test_acc_{name}": acc for name, acc in readings(history).items()},
        "weights_kept": kept[:n_layers],
        "biases_kept": kept[n_layers:],
        "layer_sparsity": [1 - k / m.numel() for k, m in zip(kept, masks, strict=False)][:n_layers],
        "dead_units": [int((m.sum(0) == 0).sum()) for m in masks[: n_layers - 1]],
        "history": history,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "seconds": time.perf_counter() - t0,
    }


def table(folder: Path) -> str:
    """Markdown: test error (mean ± std over seeds, n) per sparsity and bias setting, in each
    reading of ``readings``, with the masks' per-layer sparsity and dead units (means)."""
    groups: dict[tuple[float, bool], list[dict[str, object]]] = {}
    for f in sorted(folder.glob("*.json")):
        r = json.loads(f.read_text())
        groups.setdefault((r["sparsity"], r["keep_biases"]), []).append(r)

    def cell(runs: list[dict[str, object]], name: str) -> str:
        return pm(1 - readings(r["history"])[name] for r in runs)

    lines = [
        "| % removed | biases | n | "
        + " | ".join(COLUMNS.values())
        + " | layer sparsity % | dead units (layer 1, 2) |",
        "|---|---|---|" + "---|" * len(COLUMNS) + "---|---|",
    ]
    for (k, kept), runs in sorted(groups.items()):
        spars = np.mean([r["layer_sparsity"] for r in runs], axis=0)
        dead = np.mean([r["dead_units"] for r in runs], axis=0)
        lines.append(
            f"| {100 * k:g} | {'kept' if kept else 'pruned'} | {len(runs)} | "
            + " | ".join(cell(runs, name) for name in COLUMNS)
            + f" | {' / '.join(f'{100 * s:.1f}' for s in spars)} "
            f"| {' / '.join(f'{d:.0f}' for d in dead)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, help="print the table of a folder of results")
    parser.add_argument("--sparsity", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep-biases",
        action="store_true",
        help="leave the biases out of the mask (trained, never pruned)",
    )
    parser.add_argument("--iterations", type=int, default=250_000)
    parser.add_argument("--decay-every", type=int, default=25_000)
    parser.add_argument("--check-every", type=int, default=1_000)
    parser.add_argument("--out", type=Path)
    a = parser.parse_args()
    if a.table is not None:
        if not any(a.table.glob("*.json")):
            parser.error(f"no results (*.json) in {a.table}; run studies/snip_reference/run.sh")
        print(table(a.table))
        return
    if a.sparsity is None or a.out is None:
        parser.error("--sparsity and --out are needed to run (or --table DIR to summarise)")
    if not 0 <= a.sparsity < 1:
        parser.error(f"--sparsity {a.sparsity} is outside [0, 1); e.g. --sparsity 0.98 for 98 %")
    result = run(a.sparsity, a.seed, a.keep_biases, a.iterations, a.decay_every, a.check_every)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(a.out)
    print(f"k={a.sparsity} seed={a.seed} biases={'kept' if a.keep_biases else 'pruned'}: "
          "test error "
          + ", ".join(f"{100 * (1 - result[f'test_acc_{name}']):.2f} % ({name})"
                      for name in COLUMNS))  # fmt: skip


if __name__ == "__main__":
    main()

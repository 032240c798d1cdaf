"""Why is unit pruning by incoming-weight L2 norm no better than random? Compare criteria.

For the dense models of a finished one-shot sweep (their dense-cache checkpoints, named in
each job's result.json), prunes k % of the units of every hidden layer, one-shot and without
fine-tuning, by four scores, and prints test accuracy (mean ± std over the seeds):

- ``in``: L2 norm of the unit's incoming weights (a row of W_l): prunelab's ``neuron``;
- ``random``: uniform at random (``random_neuron``'s stream);
- ``in×out``: ‖incoming‖ · ‖outgoing‖ (the column of W_{l+1}): invariant to the rescaling
  ``relu(a·x)·w = relu(x)·a·w`` that leaves the network unchanged but moves ``in`` freely;
- ``act×out``: mean activation on 10 000 training images × ‖outgoing‖: what the unit
  actually sends on, measured.

    python studies/unit_criteria/explore_unit_criteria.py outputs/studies/weight_vs_unit/oneshot
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from prunelab.config import CONF_DIR
from prunelab.criteria import CRITERIA as REGISTERED
from prunelab.criteria import ScoreContext
from prunelab.data import load_dataset, make_splits
from prunelab.nets import MaskedMLP, StackedMLP
from prunelab.pruning import n_to_prune, smallest_mask
from prunelab.selection import drawn_generators

KS = [0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
CRITERIA = ("in", "random", "in×out", "act×out")


def dense_models(sweep: Path) -> dict[int, MaskedMLP]:
    """seed → the dense model its one-shot jobs were pruned from."""
    nets = {}
    for path in sorted(sweep.glob("*/result.json")):
        r = json.loads(path.read_text())
        if r.get("dense_cache") and r["seed"] not in nets:
            ckpt = Path(r["dense_cache"]["entry"]) / "dense.ckpt"
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
            # Every run trains as a stack (a single run is a stack of one): the entry holds
            # a StackedMLP of one member.
            stack = StackedMLP([MaskedMLP(r["config"]["model"]["sizes"])])
            stack.load_state_dict(
                {k[4:]: v for k, v in state["state_dict"].items() if k[:4] == "net."}
            )
            nets[r["seed"]] = stack.unstack(0).eval()
    if not nets:
        sys.exit(f"error: no result.json naming a dense_cache under {sweep}")
    return nets


@torch.no_grad()
def unit_scores(net: MaskedMLP, criterion: str, x: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """One score per unit of each hidden layer; the lowest are pruned. ``in``, ``random`` and
    ``act×out`` are prunelab's own criteria (``unit_l2``, ``random_unit``,
    ``activation_out``, the last on the images ``x``); ``in×out`` exists only here."""
    weights = [layer.weight[None] for layer in net.layers]
    ctx = ScoreContext(
        weights=weights,
        masks=[torch.ones_like(w, dtype=torch.bool) for w in weights],
        pruned=list(range(len(weights) - 1)),
        gens=drawn_generators([seed]),
        batches=[(x, torch.zeros(len(x), dtype=torch.long))],  # labels: unused by these
    )
    if criterion == "in×out":
        return [w[0].norm(dim=1) * weights[i + 1][0].norm(dim=0)
                for i, w in enumerate(weights[:-1])]  # fmt: skip
    name = {"in": "unit_l2", "random": "random_unit", "act×out": "activation_out"}[criterion]
    return [s[0] for s in REGISTERED.get(name)().scores(ctx)]


@torch.no_grad()
def pruned_figures(
    net: MaskedMLP, scores: list[torch.Tensor], k: float, x: torch.Tensor, y: torch.Tensor
) -> tuple[float, float]:
    """(test accuracy, mean cosine similarity of the pruned and the dense logits).

    The network is bias-free ReLU, hence positively homogeneous: logits scaled by any c > 0
    give the same predictions, so the *direction* of the logits is what pruning must keep.
    """
    h = x
    for layer, s in zip(net.layers[:-1], scores, strict=True):
        keep = smallest_mask(s, n_to_prune(s.numel(), k))
        h = torch.relu(h @ (layer.weight * keep[:, None]).T)
    logits = net.layers[-1](h)
    cosine = torch.nn.functional.cosine_similarity(logits, net(x), dim=1).mean()
    return float((logits.argmax(dim=1) == y).float().mean()), float(cosine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "sweep", type=Path, help="a one-shot sweep, e.g. outputs/studies/weight_vs_unit/oneshot"
    )
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config")
    splits = make_splits(load_dataset("mnist", cfg.paths.data_dir, False), cfg.data.mean,
                         cfg.data.std, None, "cpu")  # fmt: skip
    x_train = splits.train[0][:10_000]
    x, y = splits.test
    nets = dense_models(args.sweep)
    figures = {
        (k, c): torch.tensor(
            [
                pruned_figures(net, unit_scores(net, c, x_train, seed), k, x, y)
                for seed, net in nets.items()
            ]
        )
        for k in KS
        for c in CRITERIA
    }
    for column, title, scale in (
        (0, "test accuracy %", 100.0),
        (1, "cosine similarity of pruned and dense logits", 1.0),
    ):
        print(f"\nUnit pruning, one-shot, no fine-tuning: {title}, seeds {sorted(nets)}\n")
        print("| k % | " + " | ".join(CRITERIA) + " |")
        print("|---:|" + "---:|" * len(CRITERIA))
        for k in KS:
            cells = []
            for c in CRITERIA:
                v = scale * figures[k, c][:, column]
                std = f" ± {v.std():.2f}" if len(v) > 1 else ""
                cells.append(f"{v.mean():.2f}{std}")
            print(f"| {100 * k:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

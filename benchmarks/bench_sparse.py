"""What sparsity buys at inference: masked dense vs compact vs CSR vs auto, measured side by side.

For both strategies, k ∈ {0, 50, 70, 90, 95, 99} % and batch ∈ {1, 64, 10000}, times the
challenge MLP's forward pass in each exported form (``prunelab.sparse.export``), interleaving
the forms round by round so machine drift hits all alike, and prints speedups over the masked
dense model (the pruned weights as plain dense matrices) next to the ideal FLOP ratio.

    python benchmarks/bench_sparse.py                      # writes outputs/bench/sparse.{csv,md}
    python benchmarks/bench_sparse.py --quick              # fewer repetitions
    python benchmarks/bench_sparse.py --model lenet5       # outputs/bench/sparse_lenet5.{csv,md}

For a conv model (``--model lenet5``, batches 1, 64 and 1000) the weight strategy is pruned
weights and the neuron strategy pruned channels (filters); compact removes dead channels,
CSR turns pruned linear layers into CSR (a conv stays dense: PyTorch has no sparse conv), and
the column ``conv CSR`` times each weight-pruned conv layer as an unfolded (im2col) CSR
product against the dense ``conv2d`` of the same layer: the best ratio over the conv layers,
which says whether a sparse conv could ever pay on this machine.

Goals (issue 7): neuron compact at k = 90 %, batch 10000 ≥ 18× (ideal 25×); weight CSR at
k = 99 %, batch 1 ≥ 6×; auto never more than 5 % slower than dense anywhere.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from prunelab import models as zoo
from prunelab.config import strategy_method
from prunelab.nets import MaskedMLP
from prunelab.sparse import TARGETS, best_seconds, export, measure_speedups, to_csr_int32

SIZES = [784, 1000, 1000, 500, 200, 10]
KS = [0.0, 0.5, 0.7, 0.9, 0.95, 0.99]
BATCHES = [1, 64, 10_000]
CONV_BATCHES = [1, 64, 1000]


def reps_for(batch: int, quick: bool) -> int:
    """Enough repetitions for a stable median, in a few seconds per point."""
    n = {1: 200, 64: 40, 1000: 6, 10_000: 6}[batch]
    return max(3, n // 3) if quick else n


def conv_csr_ratio(net: zoo.MaskedNet, batch: int, reps: int) -> float:
    """The best (dense conv2d time / im2col CSR time) over ``net``'s pruned conv layers at
    ``batch``, each timed on its own input shape; 0 where no conv layer is pruned."""
    best = 0.0
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda m, a, o, n=n: shapes.__setitem__(n, a[0].shape))
             for n, m in net.model.named_modules() if isinstance(m, torch.nn.Conv2d)]  # fmt: skip
    net(torch.zeros(1, *net.image_shape).flatten(1))
    for h in hooks:
        h.remove()
    for name, mask in zip(net.layout.names, net.masks(), strict=True):
        conv = net.model.get_submodule(name.rsplit(".", 1)[0])
        if not isinstance(conv, torch.nn.Conv2d) or bool(mask.all()):
            continue
        w = (conv.weight * mask).detach()
        x = torch.randn(batch, *shapes[name.rsplit(".", 1)[0]][1:])
        csr = to_csr_int32(w.flatten(1))
        dense = best_seconds(lambda x=x, w=w: F.conv2d(x, w), reps)
        sparse = best_seconds(lambda x=x, w=w, csr=csr: im2col_csr(x, csr, w.shape), reps)
        best = max(best, dense / sparse)
    return best


def im2col_csr(x: torch.Tensor, csr: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A bias-free, stride-1 conv as one CSR product over the unfolded input: (out, B, H', W')."""
    cols = F.unfold(x, shape[2:])  # (B, in·kh·kw, positions)
    out_hw = [n - k + 1 for n, k in zip(x.shape[2:], shape[2:], strict=True)]
    flat = cols.transpose(0, 1).reshape(cols.shape[1], -1)
    return (csr @ flat).reshape(shape[0], x.shape[0], *out_hw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a third of the repetitions")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--model", default="mlp", help="mlp (the challenge's) or lenet5")
    args = parser.parse_args()
    conv = args.model != "mlp"
    stem = "sparse" if not conv else f"sparse_{args.model}"
    rows = []
    for strategy in ("weight", "neuron"):
        for k in KS:
            if conv:
                net = zoo.masked_member(args.model, (1, 28, 28), 10, seed=0)
            else:
                torch.manual_seed(0)
                net = MaskedMLP(SIZES)
            net.prune(strategy_method(strategy), k)
            fig = net.sparsity(k)
            least = min(fig["flops/sparse"], fig["flops/compact"])  # 0: a layer lost every unit
            ideal = fig["flops/dense"] / least if least else math.inf
            for batch in CONV_BATCHES if conv else BATCHES:
                x = torch.randn(batch, 784)
                models = {t: export(net, t, batch_size=batch) for t in TARGETS}
                t = measure_speedups(models, x, reps_for(batch, args.quick))
                row = {"strategy": strategy, "k": k, "batch": batch, "ideal": ideal}
                if conv:
                    row["conv_csr_x"] = conv_csr_ratio(net, batch, reps_for(batch, True))
                row["dense_ms"] = 1e3 * t["dense"]
                for target in ("compact", "csr", "auto"):
                    row[f"{target}_x"] = t[target]
                row["auto_kinds"] = "/".join(models["auto"].kinds)
                rows.append(row)
                print(
                    f"{strategy:6s} k={100 * k:4.0f}% batch={batch:5d}"
                    f"  dense {row['dense_ms']:8.3f} ms"
                    f"  compact {row['compact_x']:6.2f}x  csr {row['csr_x']:6.2f}x"
                    f"  auto {row['auto_x']:6.2f}x  ideal {ideal:6.1f}x"
                    + (f"  conv CSR {row['conv_csr_x']:5.2f}x" if conv else ""),
                    flush=True,
                )
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / f"{stem}.csv", index=False)
    lines = [
        f"Speedup over the masked dense {args.model} (median of paired, interleaved runs), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "",
        "| strategy | k % | batch | dense ms | compact | CSR | auto | ideal (FLOPs) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['strategy']} | {100 * r['k']:g} | {r['batch']} | {r['dense_ms']:.3f} | "
            f"{r['compact_x']:.2f}× | {r['csr_x']:.2f}× | {r['auto_x']:.2f}× | {r['ideal']:.1f}× |"
        )
    if conv:
        lines += ["", "conv CSR: best dense conv2d / im2col CSR time over the pruned conv layers:"]
        lines += [f"- {r['strategy']} k={100 * r['k']:g}% batch {r['batch']}: "
                  f"{r['conv_csr_x']:.2f}×" for r in rows if r["conv_csr_x"]]  # fmt: skip
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    if conv:
        print("\n".join(lines))
        print(f"wrote {args.out / stem}.csv and .md")
        return

    def pick(strategy: str, k: float, batch: int, col: str) -> float:
        sel = df[(df.strategy == strategy) & (df.k == k) & (df.batch == batch)]
        return float(sel[col].iloc[0])

    print()
    print("\n".join(lines))
    print()
    print(
        f"neuron compact, k=90 %, batch 10000: {pick('neuron', 0.9, 10_000, 'compact_x'):.1f}x"
        "  goal ≥ 18x"
    )
    print(
        f"weight CSR, k=99 %, batch 1:         {pick('weight', 0.99, 1, 'csr_x'):.1f}x  goal ≥ 6x"
    )
    print(f"auto, worst point of the grid:       {df['auto_x'].min():.2f}x  goal ≥ 0.95x")
    print(f"wrote {args.out / 'sparse.csv'} and {args.out / 'sparse.md'}")


if __name__ == "__main__":
    main()

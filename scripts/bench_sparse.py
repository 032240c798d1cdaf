"""What sparsity buys at inference: masked dense vs compact vs CSR vs auto, measured side by side.

For both strategies, k ∈ {0, 50, 70, 90, 95, 99} % and batch ∈ {1, 64, 10000}, times the
challenge MLP's forward pass in each exported form (``prunelab.sparse.export``), interleaving
the forms round by round so machine drift hits all alike, and prints speedups over the masked
dense model (the pruned weights as plain dense matrices) next to the ideal FLOP ratio.

    python scripts/bench_sparse.py                      # writes outputs/bench/sparse.{csv,md}
    python scripts/bench_sparse.py --quick              # fewer repetitions

Goals (issue 7): neuron compact at k = 90 %, batch 10000 ≥ 18× (ideal 25×); weight CSR at
k = 99 %, batch 1 ≥ 6×; auto never more than 5 % slower than dense anywhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from prunelab.config import strategy_method
from prunelab.nets import MaskedMLP
from prunelab.sparse import TARGETS, export, measure_speedups

SIZES = [784, 1000, 1000, 500, 200, 10]
KS = [0.0, 0.5, 0.7, 0.9, 0.95, 0.99]
BATCHES = [1, 64, 10_000]


def reps_for(batch: int, quick: bool) -> int:
    """Enough repetitions for a stable median, in a few seconds per point."""
    n = {1: 200, 64: 40, 10_000: 6}[batch]
    return max(3, n // 3) if quick else n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a third of the repetitions")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args()
    torch.manual_seed(0)
    base = MaskedMLP(SIZES)
    rows = []
    for strategy in ("weight", "neuron"):
        for k in KS:
            net = MaskedMLP(SIZES)
            net.load_state_dict(base.state_dict())
            net.prune(strategy_method(strategy), k)
            fig = net.sparsity(k)
            ideal = fig["flops/dense"] / min(fig["flops/sparse"], fig["flops/compact"])
            for batch in BATCHES:
                x = torch.randn(batch, 784)
                models = {t: export(net, t, batch_size=batch) for t in TARGETS}
                t = measure_speedups(models, x, reps_for(batch, args.quick))
                row = {"strategy": strategy, "k": k, "batch": batch, "ideal": ideal}
                row["dense_ms"] = 1e3 * t["dense"]
                for target in ("compact", "csr", "auto"):
                    row[f"{target}_x"] = t[target]
                row["auto_kinds"] = "/".join(models["auto"].kinds)
                rows.append(row)
                print(
                    f"{strategy:6s} k={100 * k:4.0f}% batch={batch:5d}"
                    f"  dense {row['dense_ms']:8.3f} ms"
                    f"  compact {row['compact_x']:6.2f}x  csr {row['csr_x']:6.2f}x"
                    f"  auto {row['auto_x']:6.2f}x  ideal {ideal:6.1f}x",
                    flush=True,
                )
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "sparse.csv", index=False)
    lines = [
        f"Speedup over the masked dense model (median of paired, interleaved runs), torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads.",
        "",
        "| strategy | k % | batch | dense ms | compact | CSR | auto | ideal (FLOPs) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['strategy']} | {100 * r['k']:g} | {r['batch']} | {r['dense_ms']:.3f} | "
            f"{r['compact_x']:.2f}× | {r['csr_x']:.2f}× | {r['auto_x']:.2f}× | {r['ideal']:.1f}× |"
        )
    (args.out / "sparse.md").write_text("\n".join(lines) + "\n")

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

"""The tables of docs/RESULTS.md's third round, from the sweeps of ``scripts/run_results3.sh``:
SNIP on LeNet-300-100 against its paper, pruning at initialisation against the layerwise-shuffle
control and random masks, unit criteria against L2 and random units (paired by seed: every
criterion prunes the same dense model of a seed), and weight budgets spread by uniform, global,
ERK and LAMP allocations.

Reads every ``result.json`` under ``<root>/<arm>`` (numbers verbatim from the runs) and prints
markdown: mean ± std (ddof=1) over seeds, in %; paired differences with a two-sided paired
t-test (Student's t, n − 1 degrees of freedom) and the count of seeds in which the difference
has the sign of the mean.

    python scripts/results3_tables.py outputs/round3 > outputs/round3/tables.md
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from prunelab.report.read import job_dirs
from prunelab.results import read_result

SNIP_PAPER = {0.95: 1.6, 0.98: 2.4}  # Lee et al. 2019, LeNet-300-100, test error %
INIT_METHODS = ("snip", "grasp", "synflow", "global_weight")
UNIT_CRITERIA = ("neuron", "random_neuron", "taylor_neuron", "activation_neuron",
                 "apoz_neuron", "activation_out_neuron")  # fmt: skip
ALLOCATIONS = ("weight", "global_weight", "erk_weight", "lamp")


def load(folder: Path) -> pd.DataFrame:
    """One row per finished job under ``folder``: its result, figures and method settings."""
    rows = []
    for job in job_dirs(folder):
        r = read_result(job)
        if r is None:
            continue
        s = r["config"]["strategy"]
        rows.append(
            {
                **{k: v for k, v in r.items() if not isinstance(v, (dict, list))},
                **{f"fig:{k}": v for k, v in r["figures"].items()},
                "shuffle": bool(s.get("shuffle", False)),
                "threads": r["numerics"]["threads"],
            }
        )
    return pd.DataFrame(rows)


def pm(values: Iterable[float], scale: float = 100.0) -> str:
    """``mean ± std`` of ``values`` × ``scale`` (std with ddof=1)."""
    v = np.asarray(list(values), dtype=float) * scale
    if v.size == 0:
        return "–"
    std = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    return f"{v.mean():.2f} ± {std:.2f}"


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) (Lentz's continued fraction, as in
    Numerical Recipes), enough for Student's t without scipy."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - betainc(b, a, 1.0 - x)
    front = math.exp(a * math.log(x) + b * math.log(1 - x) - math.log(a)
                     - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)))  # fmt: skip
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-12:
            break
    return front * (f - 1.0)


def paired(diffs: Iterable[float]) -> str:
    """``mean ± std (t, p, k/n)`` of paired differences in points: the two-sided p of a
    paired t-test, and in how many pairs the difference has the mean's sign."""
    d = np.asarray(list(diffs), dtype=float) * 100.0
    n = d.size
    if n < 2:
        return "–"
    mean, std = float(d.mean()), float(np.std(d, ddof=1))
    same = int((np.sign(d) == np.sign(mean)).sum())
    if std == 0.0:
        return f"{mean:+.2f} ± 0.00 ({same}/{n})"
    t = mean / (std / math.sqrt(n))
    dof = n - 1
    p = betainc(dof / 2, 0.5, dof / (dof + t * t))
    return f"{mean:+.2f} ± {std:.2f} (t = {t:.1f}, p = {p:.2g}, {same}/{n})"


def by_seed(df: pd.DataFrame, **where: object) -> pd.Series:
    """Test accuracy per seed of the rows matching ``where``."""
    mask = np.ones(len(df), dtype=bool)
    for key, value in where.items():
        mask &= (df[key] == value).to_numpy()
    return df[mask].set_index("seed")["test_acc"].sort_index()


def snip_table(init: pd.DataFrame, long: pd.DataFrame) -> list[str]:
    out = ["### SNIP on LeNet-300-100 against Lee et al. (2019)", "",
           "| % removed | paper's test error % | ours, 10 epochs | ours, 30 epochs |",
           "|---|---|---|---|"]  # fmt: skip
    for k, paper in SNIP_PAPER.items():
        cells = []
        for df in (init, long):
            acc = by_seed(df, strategy="snip", sparsity=k, shuffle=False) if len(df) else []
            cells.append(pm(1.0 - a for a in acc) + f" (n={len(acc)})" if len(acc) else "–")
        out.append(f"| {100 * k:g} | {paper} | {cells[0]} | {cells[1]} |")
    return [*out, ""]


def init_table(init: pd.DataFrame, random: pd.DataFrame) -> list[str]:
    ks = sorted(init["sparsity"].unique())
    out = ["### Pruning at initialisation: test accuracy %", "",
           "| method | " + " | ".join(f"{100 * k:g} %" for k in ks) + " |",
           "|---|" + "---|" * len(ks)]  # fmt: skip
    for name in INIT_METHODS:
        for shuffle in (False, True):
            cells = [pm(by_seed(init, strategy=name, sparsity=k, shuffle=shuffle)) for k in ks]
            label = f"{name}, layerwise shuffle" if shuffle else name
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    if len(random):
        cells = [pm(by_seed(random, strategy="random_weight", sparsity=k)) for k in ks]
        out.append("| random (k in every layer) | " + " | ".join(cells) + " |")
    out += ["", "Method minus its own layerwise shuffle (points, paired by seed):", "",
            "| method | " + " | ".join(f"{100 * k:g} %" for k in ks) + " |",
            "|---|" + "---|" * len(ks)]  # fmt: skip
    for name in INIT_METHODS:
        cells = []
        for k in ks:
            a = by_seed(init, strategy=name, sparsity=k, shuffle=False)
            b = by_seed(init, strategy=name, sparsity=k, shuffle=True)
            cells.append(paired((a - b).dropna()))
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += ["", "Per-layer sparsity each method chose (seed 0, % of fc1 / fc2 / fc3):", "",
            "| method | " + " | ".join(f"{100 * k:g} %" for k in ks) + " |",
            "|---|" + "---|" * len(ks)]  # fmt: skip
    for name in INIT_METHODS:
        cells = []
        for k in ks:
            row = init[(init.strategy == name) & (init.sparsity == k) & ~init.shuffle
                       & (init.seed == 0)]  # fmt: skip
            if row.empty:
                cells.append("–")
                continue
            layers = [row.iloc[0][f"fig:sparsity/layer{i}"] for i in (1, 2, 3)]
            cells.append(" / ".join(f"{100 * x:.1f}" for x in layers))
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*out, ""]


def unit_table(units: pd.DataFrame) -> list[str]:
    ks = sorted(units["sparsity"].unique())
    out = []
    for ft in sorted(units["finetune_epochs"].unique()):
        part = units[units.finetune_epochs == ft]
        what = "no fine-tuning" if ft == 0 else f"{ft} epoch(s) of fine-tuning"
        out += [f"### Unit criteria, {what}: test accuracy %", "",
                "| criterion | " + " | ".join(f"k = {100 * k:g} %" for k in ks) + " |",
                "|---|" + "---|" * len(ks)]  # fmt: skip
        for name in UNIT_CRITERIA:
            cells = [pm(by_seed(part, strategy=name, sparsity=k)) for k in ks]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        for ref in ("random_neuron", "neuron"):
            out += ["", f"Minus {ref} (points, paired by seed):", "",
                    "| criterion | " + " | ".join(f"k = {100 * k:g} %" for k in ks) + " |",
                    "|---|" + "---|" * len(ks)]  # fmt: skip
            for name in UNIT_CRITERIA:
                if name == ref:
                    continue
                cells = []
                for k in ks:
                    a = by_seed(part, strategy=name, sparsity=k)
                    b = by_seed(part, strategy=ref, sparsity=k)
                    cells.append(paired((a - b).dropna()))
                out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def allocation_table(alloc: pd.DataFrame) -> list[str]:
    ks = sorted(alloc["sparsity"].unique())
    out = []
    for ft in sorted(alloc["finetune_epochs"].unique()):
        part = alloc[alloc.finetune_epochs == ft]
        what = "no fine-tuning" if ft == 0 else f"{ft} epoch(s) of fine-tuning"
        out += [f"### Weight budgets by allocation, {what}: test accuracy %", "",
                "| allocation | " + " | ".join(f"{100 * k:g} %" for k in ks) + " |",
                "|---|" + "---|" * len(ks)]  # fmt: skip
        for name in ALLOCATIONS:
            cells = [pm(by_seed(part, strategy=name, sparsity=k)) for k in ks]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out += ["", "Minus uniform (points, paired by seed):", "",
                "| allocation | " + " | ".join(f"{100 * k:g} %" for k in ks) + " |",
                "|---|" + "---|" * len(ks)]  # fmt: skip
        for name in ALLOCATIONS[1:]:
            cells = [paired((by_seed(part, strategy=name, sparsity=k)
                             - by_seed(part, strategy="weight", sparsity=k)).dropna())
                     for k in ks]  # fmt: skip
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["Per-layer sparsity (seed 0, no fine-tuning, % of the four hidden layers):", "",
            "| allocation | " + " | ".join(f"{100 * k:g} %" for k in ks) + " |",
            "|---|" + "---|" * len(ks)]  # fmt: skip
    for name in ALLOCATIONS:
        cells = []
        for k in ks:
            row = alloc[(alloc.strategy == name) & (alloc.sparsity == k) & (alloc.seed == 0)
                        & (alloc.finetune_epochs == 0)]  # fmt: skip
            if row.empty:
                cells.append("–")
                continue
            cells.append(" / ".join(f"{100 * row.iloc[0][f'fig:sparsity/layer{i}']:.1f}"
                                    for i in (1, 2, 3, 4)))  # fmt: skip
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*out, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the OUT dir of run_results3.sh")
    args = parser.parse_args(argv)
    names = ("init_lenet300", "snip_lenet300_30ep", "unit_criteria", "allocation")
    arms = {n: load(args.root / n) if (args.root / n).is_dir() else pd.DataFrame() for n in names}
    init = arms["init_lenet300"]
    lines: list[str] = []
    if len(init):
        methods = init[init.strategy != "random_weight"]
        random = init[init.strategy == "random_weight"]
        lines += snip_table(methods, arms["snip_lenet300_30ep"])
        lines += init_table(methods, random)
    if len(arms["unit_criteria"]):
        lines += unit_table(arms["unit_criteria"])
    if len(arms["allocation"]):
        lines += allocation_table(arms["allocation"])
    threads = sorted({t for df in arms.values() if len(df) for t in df["threads"]})
    lines.append(f"Threads of the runs: {threads}.")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

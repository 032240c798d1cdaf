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
from collections.abc import Iterable, Sequence
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


def rows_of(df: pd.DataFrame, **where: object) -> pd.DataFrame:
    """The rows of ``df`` matching every ``key=value`` of ``where``."""
    mask = np.ones(len(df), dtype=bool)
    for key, value in where.items():
        mask &= (df[key] == value).to_numpy()
    return df[mask]


def by_seed(df: pd.DataFrame, **where: object) -> pd.Series:
    """Test accuracy per seed of the rows matching ``where``."""
    return rows_of(df, **where).set_index("seed")["test_acc"].sort_index()


def header(first: str, ks: Sequence[float], column: str = "{:g} %") -> list[str]:
    """A markdown table's head: ``first``, then one column per k (in %)."""
    return [f"| {first} | " + " | ".join(column.format(100 * k) for k in ks) + " |",
            "|---|" + "---|" * len(ks)]  # fmt: skip


def row(label: str, cells: Iterable[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def difference_row(label: str, ks: Sequence[float], df: pd.DataFrame, a: dict[str, object],
                   b: dict[str, object]) -> str:  # fmt: skip
    """Arm ``a`` minus arm ``b`` (each a ``where`` of ``by_seed``) at every k, paired by seed."""
    return row(label, (paired((by_seed(df, sparsity=k, **a) - by_seed(df, sparsity=k, **b))
                              .dropna()) for k in ks))  # fmt: skip


def profile_row(label: str, ks: Sequence[float], df: pd.DataFrame, layers: Sequence[int],
                **where: object) -> str:  # fmt: skip
    """The per-layer sparsity (%) seed 0's mask ended with at every k, ``a / b / c``."""
    cells = []
    for k in ks:
        found = rows_of(df, sparsity=k, seed=0, **where)
        cells.append("–" if found.empty else " / ".join(
            f"{100 * found.iloc[0][f'fig:sparsity/layer{i}']:.1f}" for i in layers))  # fmt: skip
    return row(label, cells)


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
    out = ["### Pruning at initialisation: test accuracy %", "", *header("method", ks)]
    for name in INIT_METHODS:
        for shuffle in (False, True):
            cells = [pm(by_seed(init, strategy=name, sparsity=k, shuffle=shuffle)) for k in ks]
            out.append(row(f"{name}, layerwise shuffle" if shuffle else name, cells))
    if len(random):
        cells = [pm(by_seed(random, strategy="random_weight", sparsity=k)) for k in ks]
        out.append(row("random (k in every layer)", cells))
    out += ["", "Method minus its own layerwise shuffle (points, paired by seed):", "",
            *header("method", ks)]  # fmt: skip
    out += [difference_row(name, ks, init, {"strategy": name, "shuffle": False},
                           {"strategy": name, "shuffle": True})
            for name in INIT_METHODS]  # fmt: skip
    out += ["", "Per-layer sparsity each method chose (seed 0, % of fc1 / fc2 / fc3):", "",
            *header("method", ks)]  # fmt: skip
    out += [profile_row(name, ks, init, (1, 2, 3), strategy=name, shuffle=False)
            for name in INIT_METHODS]  # fmt: skip
    return [*out, ""]


def compared_table(df: pd.DataFrame, title: str, first: str, names: Sequence[str],
                   refs: dict[str, str], column: str) -> list[str]:  # fmt: skip
    """Per fine-tune length: test accuracy of each strategy of ``names`` at every k, then each
    one minus each reference strategy of ``refs`` (strategy → its label), paired by seed."""
    ks = sorted(df["sparsity"].unique())
    out = []
    for ft in sorted(df["finetune_epochs"].unique()):
        part = df[df.finetune_epochs == ft]
        what = "no fine-tuning" if ft == 0 else f"{ft} epoch(s) of fine-tuning"
        out += [f"### {title}, {what}: test accuracy %", "", *header(first, ks, column)]
        out += [row(name, (pm(by_seed(part, strategy=name, sparsity=k)) for k in ks))
                for name in names]  # fmt: skip
        for ref in refs:
            out += [
                "",
                f"Minus {refs[ref]} (points, paired by seed):",
                "",
                *header(first, ks, column),
            ]
            out += [difference_row(name, ks, part, {"strategy": name}, {"strategy": ref})
                    for name in names if name != ref]  # fmt: skip
        out.append("")
    return out


def unit_table(units: pd.DataFrame) -> list[str]:
    refs = {"random_neuron": "random_neuron", "neuron": "neuron"}
    return compared_table(units, "Unit criteria", "criterion", UNIT_CRITERIA, refs, "k = {:g} %")


def allocation_table(alloc: pd.DataFrame) -> list[str]:
    ks = sorted(alloc["sparsity"].unique())
    out = compared_table(alloc, "Weight budgets by allocation", "allocation", ALLOCATIONS,
                         {"weight": "uniform"}, "{:g} %")  # fmt: skip
    out += ["Per-layer sparsity (seed 0, no fine-tuning, % of the four hidden layers):", "",
            *header("allocation", ks)]  # fmt: skip
    out += [profile_row(name, ks, alloc, (1, 2, 3, 4), strategy=name, finetune_epochs=0)
            for name in ALLOCATIONS]  # fmt: skip
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

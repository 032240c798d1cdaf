"""The tables of the sensitivity study: each layer's accuracy drop when pruned alone (the
scans), and whether a scan's per-layer budget beats uniform magnitude pruning at the same
global sparsity (and global magnitude pruning), paired by seed.

Reads every ``result.json`` under ``<root>/scan_mlp``, ``scan_lenet5``, ``budget_mlp``,
``budget_lenet5`` and ``budget_mlp_ft`` and prints markdown: mean ± std (ddof=1) over seeds in
%, paired differences with a two-sided paired t-test and the count of seeds in which the
difference has the sign of the mean. Each budget is recomputed from its seed's scan
(``prunelab.scans.budget``, the rule the scan's own budget.json follows) at every max_drop
of ``MAX_DROPS``; ``--budgets SCAN_DIR`` prints the budgets run.sh trains (one line per seed
and distinct budget: seed, max_drop, g and the overrides).

    python studies/sensitivity/tables.py                # outputs/studies/sensitivity
    python studies/sensitivity/tables.py --budgets outputs/studies/sensitivity/scan_mlp
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prunelab.report.studytables import arm_dir, markdown_table, paired, pm, results_of, tables_main
from prunelab.scans import budget, global_sparsity, is_scan_result, number, override_line

ROOTS = (Path("outputs/studies/sensitivity"),)
# The budgets' limits, validation points: chosen so that g spans 0.8-0.96 on the challenge MLP
MAX_DROPS = (0.1, 0.5, 1.0, 2.0)
MODELS = {"mlp": "the challenge MLP", "lenet5": "LeNet-5-Caffe"}
CONTROLS = {"weight": "uniform", "global_weight": "global magnitude"}
DETAIL_HEAD = ["seed", "max_drop", "budget", "g %", "budget", *CONTROLS.values(),
               "predicted drop", "drop"]  # fmt: skip


def scans_of(folder: Path | None) -> list[dict[str, Any]]:
    """Every finished scan under ``folder``, by seed."""
    found = [r for r in results_of(folder) if is_scan_result(r)] if folder else []
    return sorted(found, key=lambda r: r["seed"])


def budgets(scans: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each seed's budget at each max_drop of ``MAX_DROPS``: its per-layer k, its global
    sparsity g (as the override line writes it) and the override line."""
    out = []
    for r in scans:
        s = r["sensitivity"]
        layers = [layer["layer"] for layer in s["layers"]]
        weights = [layer["weights"] for layer in s["layers"]]
        strategy = r["config"]["strategy"]
        for drop in MAX_DROPS:
            ks = budget(s["rows"], drop, layers)
            g = global_sparsity(ks, weights)
            line = override_line(ks, g, strategy["allocation"], strategy["prune_output"])
            out.append({"seed": r["seed"], "max_drop": drop, "layer_sparsity": ks,
                        "g": float(number(g)), "override": line})  # fmt: skip
    return out


def budget_lines(scan_dir: Path) -> list[str]:
    """``seed max_drop g overrides`` for each seed's distinct budgets (the first max_drop
    that gives each): what run.sh trains."""
    seen, lines = set(), []
    for b in budgets(scans_of(scan_dir)):
        if (b["seed"], b["override"]) not in seen:
            seen.add((b["seed"], b["override"]))
            lines.append(f"{b['seed']} {b['max_drop']:g} {number(b['g'])} {b['override']}")
    return lines


def runs_of(folder: Path | None) -> pd.DataFrame:
    """One row per finished run of a budget arm: its seed, strategy, sparsity, per-layer
    profile (None for a strategy's own), test accuracy and the weights it really removed."""
    rows = []
    for r in results_of(folder) if folder else []:
        profile = r["config"]["strategy"].get("layer_sparsity")
        rows.append({"seed": r["seed"], "strategy": r["strategy"], "sparsity": r["sparsity"],
                     "profile": tuple(profile) if profile else None, "test_acc": r["test_acc"],
                     "val_acc": r["val_acc"], "removed": r["figures"]["sparsity/global"],
                     "finetune_epochs": r["finetune_epochs"]})  # fmt: skip
    return pd.DataFrame(rows)


def pick(runs: pd.DataFrame, seed: int, column: str = "test_acc", **where: Any) -> float | None:
    """``column`` of the one run of ``seed`` matching ``where`` (None if absent)."""
    mask = runs["seed"] == seed
    for key, value in where.items():
        mask &= runs[key].map(lambda v, value=value: v == value)
    found = runs[mask]
    return float(found[column].iloc[0]) if len(found) else None


def predicted_drop(scan: dict[str, Any], ks: Sequence[float]) -> float:
    """What the scan predicts a budget costs if the layers' drops added up: the sum of each
    layer's validation drop at its k, in points."""
    drops = {(r["layer"], r["k"]): r["val_drop"] for r in scan["sensitivity"]["rows"]}
    layers = [layer["layer"] for layer in scan["sensitivity"]["layers"]]
    return sum(drops[layer, k] for layer, k in zip(layers, ks, strict=True) if k)


def drops_table(scans: Sequence[dict[str, Any]]) -> list[str]:
    """Per layer and k, the validation drop in points, mean ± std over seeds."""
    rows = pd.DataFrame([{**row, "seed": r["seed"]} for r in scans
                         for row in r["sensitivity"]["rows"]])  # fmt: skip
    ks = sorted(rows["k"].unique())
    body = []
    for (layer, name, weights), part in rows.groupby(["layer", "name", "weights"]):
        cells = []
        for k in ks:
            v = part[part["k"] == k]["val_drop"].to_numpy()
            cells.append(f"{v.mean():+.2f} ± {np.std(v, ddof=1):.2f}" if len(v) > 1
                         else f"{v.mean():+.2f}")  # fmt: skip
        body.append([f"L{layer} {name}", str(weights), *cells])
    dense = [r["sensitivity"]["dense"] for r in scans]
    return [
        f"Dense models: validation {pm(d['val_acc'] for d in dense)} %, test "
        f"{pm(d['test_acc'] for d in dense)} %. Validation drop (points) when one layer alone "
        f"is pruned, seeds {', '.join(str(r['seed']) for r in scans)}:",
        "",
        markdown_table(["layer", "weights", *(f"{100 * k:g} %" for k in ks)], body),
        "",
    ]


def comparison_table(
    scans: Sequence[dict[str, Any]], runs: pd.DataFrame, oneshot: bool = True
) -> list[str]:
    """Per max_drop: g, the test accuracy of the budget and of each control at g, and the
    budget minus each control, paired by seed; then every seed's budget, and for ``oneshot``
    runs the drop the scan predicts for it (its layers' drops added) beside the one its run
    shows (validation; after fine-tuning it is no longer the scan's to predict)."""
    found = budgets(scans)
    by_seed = {r["seed"]: r for r in scans}
    head = ["max_drop (points)", "g %", "budget", *CONTROLS.values(),
            *(f"budget − {c}" for c in CONTROLS.values())]  # fmt: skip
    body, detail = [], []
    for drop in MAX_DROPS:
        at = [b for b in found if b["max_drop"] == drop]
        acc = {"budget": [pick(runs, b["seed"], profile=tuple(b["layer_sparsity"]))
                          for b in at]}  # fmt: skip
        for strategy in CONTROLS:
            acc[strategy] = [pick(runs, b["seed"], strategy=strategy, sparsity=b["g"],
                                  profile=None) for b in at]  # fmt: skip
        diffs = [[a - c for a, c in zip(acc["budget"], acc[s], strict=True)
                  if a is not None and c is not None] for s in CONTROLS]  # fmt: skip
        body.append([f"{drop:g}", pm(b["g"] for b in at), pm(acc["budget"]),
                     *(pm(acc[s]) for s in CONTROLS), *(paired(d) for d in diffs)])  # fmt: skip
        for i, b in enumerate(at):
            profile = "[" + ", ".join(f"{k:g}" for k in b["layer_sparsity"]) + "]"
            cells = [acc[k][i] for k in ("budget", *CONTROLS)]
            accs = ["–" if c is None else f"{100 * c:.2f}" for c in cells]
            scan = by_seed[b["seed"]]
            val = pick(runs, b["seed"], "val_acc", profile=tuple(b["layer_sparsity"]))
            dense = scan["sensitivity"]["dense"]["val_acc"]
            shown = "–" if val is None else f"{100 * (dense - val):+.2f}"
            predicted = f"{predicted_drop(scan, b['layer_sparsity']):+.2f}"
            detail.append([str(b["seed"]), f"{drop:g}", profile, f"{100 * b['g']:.2f}", *accs,
                           *((predicted, shown) if oneshot else ())])  # fmt: skip
    return [
        "Test accuracy (%), mean ± std over seeds; differences in points, paired by seed "
        "(t-test, p, seeds with the mean's sign):",
        "",
        markdown_table(head, body),
        "",
        "Every seed's budget (per-layer k) and its runs (test %)"
        + (
            "; the budget's validation drop from the dense model (points) as the scan predicts "
            "it (the layers' drops added) and as its run shows it:"
            if oneshot
            else ":"
        ),
        "",
        markdown_table(DETAIL_HEAD if oneshot else DETAIL_HEAD[:-2], detail),
        "",
    ]


def tables(roots: list[Path]) -> list[str]:
    out = []
    for model, title in MODELS.items():
        scans = scans_of(arm_dir(roots, f"scan_{model}"))
        if not scans:
            continue
        out += [f"### {title}: each layer pruned alone", "", *drops_table(scans)]
        for suffix, what in (("", "one-shot, no fine-tuning"),
                             ("_ft", "one epoch of fine-tuning")):  # fmt: skip
            runs = runs_of(arm_dir(roots, f"budget_{model}{suffix}"))
            if len(runs):
                out += [f"### {title}: the scan's budget against uniform k, {what}", "",
                        *comparison_table(scans, runs, oneshot=not suffix)]  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--budgets"]:
        if len(argv) != 2:
            print("usage: tables.py --budgets SCAN_DIR", file=sys.stderr)
            return 2
        lines = budget_lines(Path(argv[1]))
        if not lines:
            print(f"error: no finished scan under {argv[1]}: run its scan arm first",
                  file=sys.stderr)  # fmt: skip
            return 1
        print("\n".join(lines))
        return 0
    return tables_main(argv, __doc__.splitlines()[0], ROOTS, tables)


if __name__ == "__main__":
    sys.exit(main())

"""The report's ShrinkBench-style parts (issue 14): compression axis, drop vs dense, per layer.

Built on small synthetic sweeps (a folder per job holding only ``result.json`` and a tiny
``metrics.csv``), so the expected numbers are known exactly and nothing trains.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from prunelab.report import DROP_PLOT, ReportError, make_report, plots
from prunelab.report.__main__ import main as report_main
from prunelab.report.plots import (
    COMPARISON_PLOTS,
    COMPRESSION_LABEL,
    EFFECTIVE_COMPRESSION_LABEL,
    epoch_plot_name,
    sparsity_plot_name,
)
from prunelab.report.stats import actual_sparsity, compression_ratio

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def job(
    root: Path, strategy: str, k: float, seed: int, test_acc: float, reinit: bool = False,
    curve: Sequence[float] = (0.5,), **figures: float,
) -> None:  # fmt: skip
    """One finished job as the report reads it; ``figures`` keys use ``__`` for ``/``;
    ``curve``: its train and test accuracy per epoch, one epoch each."""
    d = root / f"reinit={reinit},seed={seed},sparsity={k:g},strategy={strategy}"
    d.mkdir(parents=True)
    result: dict[str, Any] = {
        "status": "ok", "strategy": strategy, "sparsity": k, "seed": seed,
        "schedule": "oneshot", "epochs": len(curve), "finetune_epochs": 0,
        "train_acc": test_acc, "val_acc": test_acc, "test_acc": test_acc,
        "figures": {name.replace("__", "/"): v for name, v in figures.items()},
        "config": {"schedule": {"reinit": reinit}},
    }  # fmt: skip
    (d / "result.json").write_text(json.dumps(result))
    rows = "".join(f"{e},{acc},{acc}\n" for e, acc in enumerate(curve))
    (d / "metrics.csv").write_text("epoch,train/acc,test/acc\n" + rows)


def section(md: str, heading: str) -> str:
    """The text under ``## heading``, up to the next ``## ``."""
    start = md.index(f"## {heading}\n")
    end = md.find("\n## ", start + 3)
    return md[start : end if end != -1 else None]


def md_of(root: Path, **kw: Any) -> str:
    return (make_report(root, root / "report", **kw) / "report.md").read_text()


# ------------------------------------------------------------------------- drop vs dense


def test_the_drop_is_paired_per_seed_not_a_difference_of_means(tmp_path):
    # Dense 90/94/98 and pruned 85/90/95: per-seed drops −5, −4, −3 → −4.00 ± 1.00. The std
    # of the pruned accuracies (5) or of the dense ones (4) would be far wider.
    for seed, (dense, pruned) in enumerate([(0.90, 0.85), (0.94, 0.90), (0.98, 0.95)]):
        job(tmp_path, "weight", 0.0, seed, dense)
        job(tmp_path, "weight", 0.9, seed, pruned)
    md = md_of(tmp_path)
    drop = section(md, "Accuracy drop vs dense (points)")
    assert "| 90 | -4.00 ± 1.00 |" in drop
    assert "| 0 | +0.00 ± 0.00 |" in drop
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    pruned = summary[summary["sparsity"] == 0.9].sort_values("seed")
    assert pruned["test_acc_drop"].tolist() == pytest.approx([-0.05, -0.04, -0.03])
    assert (tmp_path / "report" / DROP_PLOT).read_bytes()[:8] == PNG_MAGIC
    assert f"]({DROP_PLOT})" in section(md, "Plots")


def test_the_drop_prefers_the_same_strategys_dense_job_else_any_of_that_seed(tmp_path):
    # "neuron" sorts first, so only a real preference pairs weight's seed 0 with its own job.
    job(tmp_path, "neuron", 0.0, 0, 0.90)
    job(tmp_path, "neuron", 0.0, 1, 0.94)
    job(tmp_path, "weight", 0.0, 0, 0.92)  # weight's own dense job, seed 0 only
    job(tmp_path, "weight", 0.5, 0, 0.82)  # vs its own 0.92 (not neuron's 0.90): −10
    job(tmp_path, "weight", 0.5, 1, 0.84)  # no weight k = 0 for seed 1: vs neuron's 0.94: −10
    drop = section(md_of(tmp_path), "Accuracy drop vs dense (points)")
    assert "| 50 | -10.00 ± 0.00 | — |" in drop


def test_a_seed_without_a_dense_job_has_no_drop(tmp_path):
    job(tmp_path, "weight", 0.0, 0, 0.90)
    job(tmp_path, "weight", 0.9, 0, 0.80)
    job(tmp_path, "weight", 0.9, 1, 0.70)  # seed 1 has no dense job anywhere
    job(tmp_path, "neuron", 0.9, 5, 0.60)  # nor has seed 5
    md = md_of(tmp_path)
    drop = section(md, "Accuracy drop vs dense (points)")
    assert "| 90 | -10.00 (1 of 2 seeds) | — |" in drop
    assert "| 90 | 75.00 ± 7.07 | 60.00 |" in section(md, "Test accuracy vs sparsity")
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    drops = summary.set_index(["strategy", "sparsity", "seed"])["test_acc_drop"]
    assert drops[("weight", 0.9, 0)] == pytest.approx(-0.10)
    assert math.isnan(drops[("weight", 0.9, 1)])
    assert math.isnan(drops[("neuron", 0.9, 5)])


def test_no_dense_job_at_all_says_so_instead_of_a_table_of_dashes(tmp_path):
    job(tmp_path, "weight", 0.5, 0, 0.90)
    job(tmp_path, "weight", 0.9, 0, 0.80)
    md = md_of(tmp_path)
    drop = section(md, "Accuracy drop vs dense (points)")
    assert "No dense (k = 0) job here, so there is no dense model to compare with" in drop
    assert "`sparsity=0`" in drop, "says how to get one"
    assert "|" not in drop and "—" not in drop, "no table of dashes"
    assert not (tmp_path / "report" / DROP_PLOT).exists()
    assert DROP_PLOT not in md


# ------------------------------------------------------------------------- per layer


def test_per_layer_table_shows_kept_percent_and_dead_units_exactly(tmp_path):
    common = {"sparsity__global": 0.75, "sparsity__layer1": 0.5, "sparsity__layer3": 0.0}
    job(tmp_path, "weight", 0.5, 0, 0.9, **common, sparsity__layer2=0.25,
        dead_units__layer1=3, dead_units__layer2=2)  # fmt: skip
    job(tmp_path, "weight", 0.5, 1, 0.9, **common, sparsity__layer2=0.35,
        dead_units__layer1=4, dead_units__layer2=2)  # fmt: skip
    # Written before dead_units existed, and with no layer-2 figure: dashes, not zeros.
    job(tmp_path, "neuron", 0.5, 0, 0.5, sparsity__layer1=0.5, sparsity__layer3=0.0)
    md = md_of(tmp_path)
    table = section(md, "Per layer")
    header = next(line for line in table.splitlines() if line.startswith("| strategy"))
    assert header.count("kept %") == 3 and header.count("dead units") == 3
    # layer 2: kept 100·(1 − mean(0.25, 0.35)) = 70.0; dead units mean(3, 4) = 3.5, (2, 2) = 2
    assert "| weight pruning | 50 | 4.0 | 50.0 | 3.5 | 70.0 | 2 | 100.0 | — |" in table
    # no sparsity/global: compression from the nominal k (50 % → 2×)
    assert "| unit (neuron) pruning | 50 | 2.0 | 50.0 | — | — | — | 100.0 | — |" in table
    # the compression column of the per-strategy table, from the mean of sparsity/global
    assert "| 50 | 4.0 | 90.00 ± 0.00 |" in section(md, "Weight pruning")


def test_no_layer_figures_means_no_per_layer_table(tmp_path):
    job(tmp_path, "weight", 0.0, 0, 0.9)
    assert "## Per layer" not in md_of(tmp_path)


# ------------------------------------------------------------------------- compression axis


def test_compression_ratio_is_one_over_the_kept_fraction():
    assert compression_ratio([0.0, 0.5, 0.9, 0.99]) == pytest.approx([1.0, 2.0, 10.0, 100.0])
    assert compression_ratio(1.0) == np.inf
    summary = pd.DataFrame({"sparsity": [0.9, 0.9], "sparsity/global": [0.8, np.nan]})
    assert actual_sparsity(summary).tolist() == pytest.approx([0.8, 0.9])
    assert actual_sparsity(summary[["sparsity"]]).tolist() == pytest.approx([0.9, 0.9])


def axes_by_plot(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """Record what each plot drew as ``finish`` writes it: x scale, label, direction, limits
    and labelled ticks, title, legend texts, and every line (``lines``: label, x, y in %,
    marker), the x of the labelled ones in ``x``."""
    seen: dict[str, dict[str, Any]] = {}
    finish = plots.finish

    def spy(fig: Any, ax: Any, path: Path, written: list[str], **labels: Any) -> None:
        finish(fig, ax, path, written, **labels)
        lo, hi = sorted(ax.get_xlim())
        ticks = zip(ax.get_xticks(), ax.get_xticklabels(), strict=True)
        seen[path.name] = {
            "scale": ax.get_xscale(),
            "xlabel": ax.get_xlabel(),
            "inverted": ax.xaxis_inverted(),
            "xlim": (lo, hi),
            "ticks": [t.get_text() for x, t in ticks if lo <= x <= hi and t.get_text()],
            "title": ax.get_title(),
            "legend": [t.get_text() for t in ax.get_legend().get_texts()],
            "lines": [
                (
                    line.get_label(),
                    list(map(float, line.get_xdata())),
                    list(map(float, line.get_ydata())),
                    line.get_marker(),
                )
                for line in ax.lines
            ],
            "x": [
                list(map(float, line.get_xdata()))
                for line in ax.lines
                if line.get_label()[0] != "_"
            ],
        }

    monkeypatch.setattr(plots, "finish", spy)
    return seen


def compression_sweep(root: Path) -> None:
    # Actual global sparsity differs from k at 90 % (0.8 → 5×, not 10×); at 50 % it is absent
    # (an old result) and the nominal k gives 2×.
    for seed in (0, 1):
        job(root, "weight", 0.0, seed, 0.98, sparsity__global=0.0, sparsity__effective=0.0)
        job(root, "weight", 0.5, seed, 0.97, sparsity__effective=0.5)
        job(root, "weight", 0.9, seed, 0.90, sparsity__global=0.8, sparsity__effective=0.95)


def test_x_compression_puts_the_accuracy_plots_on_a_log_compression_axis(tmp_path, monkeypatch):
    compression_sweep(tmp_path)
    seen = axes_by_plot(monkeypatch)
    out = make_report(tmp_path, tmp_path / "report", x="compression")
    weight = [epoch_plot_name(split, "weight") for split in ("train", "test")]
    weight += [sparsity_plot_name("weight"), *COMPARISON_PLOTS.values()]
    assert not (out / epoch_plot_name("test", "neuron")).exists(), "no neuron jobs"
    for name in [*weight, "Accuracy_vs_Effective_Sparsity.png", DROP_PLOT]:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
    for name in (sparsity_plot_name("weight"), *COMPARISON_PLOTS.values()):
        assert seen[name]["scale"] == "log", name
        assert seen[name]["xlabel"] == COMPRESSION_LABEL, name
        for xs in seen[name]["x"]:
            assert xs == pytest.approx([1.0, 2.0, 5.0]), name
    # the effective-sparsity plot and the drop plot: what was masked *or* dead (1×, 2×, 20×)
    for name in ("Accuracy_vs_Effective_Sparsity.png", DROP_PLOT):
        plot = seen[name]
        assert plot["scale"] == "log" and plot["xlabel"] == EFFECTIVE_COMPRESSION_LABEL, name
        assert plot["x"] == [pytest.approx([1.0, 2.0, 20.0])], name
    assert "Accuracy_vs_FLOPs.png" not in seen  # no flops figures: skipped, not an error


def test_the_default_x_axis_is_still_k(tmp_path, monkeypatch):
    compression_sweep(tmp_path)
    seen = axes_by_plot(monkeypatch)
    make_report(tmp_path, tmp_path / "report")
    plot = seen[sparsity_plot_name("weight")]
    assert plot["scale"] == "function" and plot["xlabel"].startswith("sparsity k")
    assert plot["x"] == [pytest.approx([0.0, 0.5, 0.9])] * 2
    assert seen[DROP_PLOT]["scale"] == "log"  # the drop plot is always against compression


def test_cli_takes_x_compression_and_rejects_anything_else(tmp_path, capsys):
    compression_sweep(tmp_path)
    assert report_main([str(tmp_path), "--x", "compression", "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.md").is_file()
    with pytest.raises(SystemExit) as exc:
        report_main([str(tmp_path), "--x", "bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --x: invalid choice: 'bogus'" in err and "compression" in err
    with pytest.raises(ReportError, match="x must be one of sparsity, compression, got 'bogus'"):
        make_report(tmp_path, x="bogus")


def test_the_reinit_control_is_reported_apart_from_the_ticket_with_the_same_mask(tmp_path):
    for seed, (ticket, control) in enumerate([(0.98, 0.90), (0.96, 0.92)]):
        job(tmp_path, "weight", 0.9, seed, ticket)
        job(tmp_path, "weight", 0.9, seed, control, reinit=True)
    summary = pd.read_csv(make_report(tmp_path, tmp_path / "report") / "summary.csv")
    means = summary.groupby(["strategy", "group"])["test_acc"].mean()
    assert means.to_dict() == pytest.approx(
        {("weight", "schedule.reinit=false"): 0.97, ("weight", "schedule.reinit=true"): 0.91}
    )

"""The report groups by everything a sweep varied: no mean mixes two experiments, the header
states only what every job shares, the dense drop pairs within a group, and every strategy
present gets its plots."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest

from prunelab.report import make_report, plots
from prunelab.report.plots import epoch_plot_name, sparsity_plot_name
from prunelab.results import RESULT_FILE

from .conftest import study_searchpath, train_cli
from .test_report_shrinkbench import PNG_MAGIC, job, section


@pytest.fixture(scope="module")
def finetune_sweep(tmp_path_factory) -> Path:
    """``experiment=finetune_length`` on a grid small enough for CI: one strategy, k = 0 and
    0.9, 0 or 1 fine-tune epochs, two seeds, 400 images, one dense epoch."""
    root = tmp_path_factory.mktemp("finetune")
    proc = train_cli(
        "-m", "experiment=finetune_length", study_searchpath("finetune"), "strategy=weight",
        "sparsity=0,0.9", "schedule.finetune_epochs=0,1", "seed=0,1", "schedule.epochs=1",
        "data.limit=400",
        f"hydra.sweep.dir={root / 'sweep'}", f"paths.cache_dir={root / 'cache'}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "sweep"


def results_by(sweep: Path) -> dict[tuple[int, float], list[dict]]:
    """The finished results, by (fine-tune epochs, k)."""
    out: dict[tuple[int, float], list[dict]] = {}
    for path in sweep.glob(f"*/{RESULT_FILE}"):
        r = json.loads(path.read_text())
        out.setdefault((r["finetune_epochs"], r["sparsity"]), []).append(r)
    return out


def test_the_report_of_finetune_length_is_its_table_one_column_per_length(finetune_sweep):
    out = make_report(finetune_sweep)
    md = (out / "report.md").read_text()
    table = section(md, "Test accuracy vs sparsity")
    head = "| strategy | k % | schedule.finetune_epochs=0 | schedule.finetune_epochs=1 |"
    assert head in table
    by = results_by(finetune_sweep)
    for k in (0.0, 0.9):
        cells = []
        for epochs in (0, 1):
            accs = [100 * r["test_acc"] for r in by[(epochs, k)]]
            assert len(accs) == 2, "two seeds per cell: never the four of two experiments"
            cells.append(f"{statistics.mean(accs):.2f} ± {statistics.stdev(accs):.2f}")
        assert f"| weight pruning | {100 * k:g} | {cells[0]} | {cells[1]} |" in table

    settings = section(md, "Settings")
    assert "`schedule.finetune_epochs` ∈ {0, 1}" in settings
    every_job = settings.split("\n\n")[1]
    assert "finetune_epochs" not in every_job and "`schedule.epochs=1`" in every_job

    summary = pd.read_csv(out / "summary.csv").set_index(["group", "sparsity", "seed"])
    for group in ("schedule.finetune_epochs=0", "schedule.finetune_epochs=1"):
        for seed in (0, 1):
            pruned, dense = summary.loc[(group, 0.9, seed)], summary.loc[(group, 0.0, seed)]
            assert pruned["test_acc_drop"] == pytest.approx(
                pruned["test_acc"] - dense["test_acc"]
            ), "paired with the dense job of its own group and seed"

    for group in ("schedule.finetune_epochs=0", "schedule.finetune_epochs=1"):
        for split in ("train", "test"):
            assert (out / epoch_plot_name(split, "weight", group)).read_bytes()[:8] == PNG_MAGIC
    assert not (out / epoch_plot_name("test", "weight")).exists(), "one figure per group"


def test_every_strategy_present_gets_its_plots_and_global_k_is_labelled_as_such(
    tmp_path, monkeypatch
):
    labels: dict[str, str] = {}
    finish = plots.finish

    def spy(fig, ax, path, written, **kw):
        finish(fig, ax, path, written, **kw)
        labels[path.name] = ax.get_xlabel()

    monkeypatch.setattr(plots, "finish", spy)
    for strategy in ("random_weight", "global_weight"):
        for seed in (0, 1):
            job(tmp_path, strategy, 0.0, seed, 0.98)
            job(tmp_path, strategy, 0.9, seed, 0.5 + 0.1 * seed)
    out = make_report(tmp_path, tmp_path / "report")
    for strategy in ("random_weight", "global_weight"):
        for name in (epoch_plot_name("test", strategy), epoch_plot_name("train", strategy),
                     sparsity_plot_name(strategy)):  # fmt: skip
            assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
    assert epoch_plot_name("test", "global_weight") == "Test_Accuracy_Global_Weight_Pruning.png"
    assert "over all pruned layers together" in labels[sparsity_plot_name("global_weight")]
    assert "over all" not in labels[sparsity_plot_name("random_weight")]
    compared = labels["Testing_Accuracy_Comparison_for_different_Pruning_Strategies.png"]
    assert "per pruned layer" in compared and "global: over all pruned layers" in compared


def test_jobs_from_different_numeric_environments_are_flagged(tmp_path):
    for seed, threads in ((0, 1), (1, 2)):
        job(tmp_path, "weight", 0.9, seed, 0.9)
        path = next(tmp_path.glob(f"*seed={seed},*/{RESULT_FILE}"))
        result = json.loads(path.read_text())
        result["numerics"] = {"threads": threads, "torch_version": "2.13.0", "dtype": "float32"}
        path.write_text(json.dumps(result))
    settings = section((make_report(tmp_path) / "report.md").read_text(), "Settings")
    assert "**The jobs ran in different numeric environments** (threads ∈ {1, 2})" in settings

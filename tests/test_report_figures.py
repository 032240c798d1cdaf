"""The report on any folder of runs, and figures that say what they draw (issue 34).

A folder of single runs with different settings (and a sweep among them) is reported with
file names a file system takes and nothing half-written when it fails; each figure's data
is checked: axis direction, scale and ticks, one line for the dense phase every k shares,
the pruned model marked at its epoch, bands labelled, one spelling per method.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from prunelab.report import COMPARISON_PLOTS, DROP_PLOT, make_report
from prunelab.report.__main__ import main as report_main
from prunelab.report.curves import epoch_lines
from prunelab.report.names import (
    EFFECTIVE_COMPRESSION_LABEL,
    FINAL_LABEL,
    MAX_NAME_BYTES,
    SHARED_LABEL,
    bounded_name,
    epoch_plot_name,
    sparsity_plot_name,
)

from .conftest import study_searchpath, train_cli
from .test_report_shrinkbench import PNG_MAGIC, axes_by_plot, job, section

FLOPS_PLOT = "Accuracy_vs_FLOPs.png"
TEST_COMPARISON = COMPARISON_PLOTS["test"]

# ------------------------------------------------------------------------- a folder of runs


@pytest.fixture(scope="module")
def first_hour(tmp_path_factory) -> Path:
    """What a new user's ``outputs/runs`` holds after the first hour, made tiny (300 images,
    one epoch): the default run, SNIP at init, RigL, a deeper net with another batch size,
    and a sweep (k = 0, 0.5) of the default's settings in a folder of sweeps."""
    root = tmp_path_factory.mktemp("first_hour")
    runs = root / "outputs" / "runs"
    tiny = ["data.limit=300", "schedule.epochs=1", "inference_batch_size=null",
            f"paths.cache_dir={root / 'cache'}"]  # fmt: skip
    small = "model.sizes=[784,32,10]"
    kinds = {
        "default": [small],
        "snip_at_init": ["schedule=init", "strategy=snip", "optim.lr=0.001", small],
        "rigl": ["experiment=dst_lenet300", study_searchpath("sparse_training"), "schedule=rigl",
                 "strategy=random_weight", "strategy.allocation=erk", "sparsity=0.9", small],
        "deeper": ["model.sizes=[784,48,24,10]", "data.batch_size=100"],
    }  # fmt: skip
    for name, args in kinds.items():
        proc = train_cli(*args, *tiny, f"hydra.run.dir={runs / name}")
        assert proc.returncode == 0, (name, proc.stderr[-3000:])
    sweep = runs / "sweeps" / "s1"
    proc = train_cli("-m", "sparsity=0,0.5", small, *tiny, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return runs


def test_a_folder_of_runs_with_different_settings_is_reported(first_hour):
    assert report_main([str(first_hour)], write=lambda _: None) == 0
    out = first_hour / "report"
    names = [p.name for p in out.iterdir()]
    assert all(len(n.encode()) <= MAX_NAME_BYTES < 255 for n in names), names
    assert not [p for p in first_hour.iterdir() if p.name.startswith(".")], "no temp left"
    summary = pd.read_csv(out / "summary.csv").fillna({"group": ""})
    assert len(summary) == 6 and summary["group_name"].nunique() == 4
    for (strategy, group), _ in summary.groupby(["strategy", "group"]):
        for split in ("train", "test"):
            assert (out / epoch_plot_name(split, strategy, group)).read_bytes()[:8] == PNG_MAGIC
    assert any(n.startswith("Test_Accuracy_SNIP_Pruning__") for n in names)
    # labels say what ran: the RigL run is RigL, not the random mask it started from
    by_job = summary.set_index("job")["strategy"]
    assert by_job["rigl"] == "rigl" and by_job["snip_at_init"] == "snip"
    assert any(n.startswith("Test_Accuracy_RigL_Pruning") for n in names), names

    md = (out / "report.md").read_text()
    assert "RigL (sparse training, gradient growth)" in md and "random weights" not in md
    groups = section(md, "Groups")
    for name in summary["group_name"].unique():
        assert f"- **{name}** (" in groups
    settings = ["schedule.name=rigl", "schedule.name=init", "schedule.name=oneshot",
                "model.sizes=[784,48,24,10]", "data.batch_size=100", "optim.lr=0.001"]  # fmt: skip
    for setting in settings:
        assert f"`{setting}`" in groups, setting
    # the default run and the sweep share their settings: one group, with a dense job
    default = summary[summary["job"] == "default"].iloc[0]
    assert (summary["group"] == default["group"]).sum() == 3
    assert default["test_acc_drop"] == pytest.approx(
        default["test_acc"] - summary.loc[summary["sparsity"] == 0.0, "test_acc"].item()
    )


def test_a_folder_of_sweeps_lists_the_jobs_each_sweep_never_started(first_hour, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(first_hour, copy, ignore=shutil.ignore_patterns("report"))
    [gone] = [p for p in (copy / "sweeps" / "s1").iterdir() if "sparsity=0.5" in p.name]
    shutil.rmtree(gone)
    missing = section((make_report(copy) / "report.md").read_text(), "Missing jobs")
    [line] = [line for line in missing.splitlines() if line.startswith("- ")]
    assert line.startswith("- `sweeps/s1: ") and "sparsity=0.5" in line
    assert line.endswith("(never started)`")


# ------------------------------------------------------------------------- no half report


def two_seeds(root: Path, strategy: str = "weight", ks: tuple[float, ...] = (0.0, 0.5, 0.9),
              **figures: float) -> None:  # fmt: skip
    for seed in (0, 1):
        for k in ks:
            job(root, strategy, k, seed, 0.9 - 0.2 * k - 0.01 * seed, **figures)


def test_a_report_that_fails_leaves_the_last_one_as_it_was_and_no_temp_files(tmp_path, monkeypatch):
    two_seeds(tmp_path)
    out = make_report(tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    job(tmp_path, "neuron", 0.5, 0, 0.5)

    def broken(*args: Any, **kwargs: Any) -> list[str]:
        raise RuntimeError("a plot could not be drawn")

    monkeypatch.setattr("prunelab.report.make.plot_all", broken)
    with pytest.raises(RuntimeError, match="could not be drawn"):
        make_report(tmp_path)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(RuntimeError):
        make_report(tmp_path, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists(), "no summary.csv of a report that never came"


def test_a_report_that_cannot_be_written_is_one_line(tmp_path, capsys):
    two_seeds(tmp_path)
    (tmp_path / "a_file").write_text("")
    assert report_main([str(tmp_path), "--out", str(tmp_path / "a_file" / "report")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write the report:") and "\n" not in err


def test_names_keep_the_studys_form_and_a_long_group_ends_in_a_hash_of_its_label():
    assert epoch_plot_name("test", "neuron") == "Test_Accuracy_Neuron_Pruning.png"
    assert sparsity_plot_name("weight") == "Accuracy_vs_Sparsity_for_Weight_Pruning.png"
    short = "schedule.finetune_epochs=1"
    assert (epoch_plot_name("train", "weight", short)
            == "Train_Accuracy_Weight_Pruning__schedule_finetune_epochs_1.png")  # fmt: skip
    long = ", ".join(f"optim.setting_{i}=0.{i}" for i in range(30))
    a, b = bounded_name("Stem", long), bounded_name("Stem", long + "1")
    assert len(a.encode()) <= MAX_NAME_BYTES and len(b.encode()) <= MAX_NAME_BYTES
    assert a.startswith("Stem__optim_setting_0_0_0_optim_setting_1_0_1_") and a.endswith(".png")
    assert a != b and a[:-13] == b[:-13], "the same readable start, another hash"
    assert bounded_name("Stem", long) == a, "the same group keeps its file name"


# ------------------------------------------------------------------------- the figures


def test_the_flops_axis_grows_to_the_right_says_so_and_has_its_ticks(tmp_path, monkeypatch):
    for k, flops in ((0.0, 50816.0), (0.5, 25408.0), (0.9, 5658.0)):
        job(tmp_path, "weight", k, 0, 0.9 - 0.1 * k, flops__compact=flops, flops__sparse=flops)
    seen = axes_by_plot(monkeypatch)
    make_report(tmp_path)
    plot = seen[FLOPS_PLOT]
    assert plot["scale"] == "log" and not plot["inverted"]
    assert "log scale" in plot["xlabel"] and "cheaper to the left" in plot["xlabel"]
    assert len(plot["ticks"]) >= 3 and "10k" in plot["ticks"], plot["ticks"]
    lo, hi = plot["xlim"]
    assert lo < 5658 and hi > 50816


def epoch_sweep(root: Path) -> None:
    """k = 0, 0.5, 0.9, two seeds, three epochs: each seed's dense phase the same for
    every k (a dense cache), then each k's pruned model."""
    for seed, curve in ((0, (0.50, 0.70, 0.80)), (1, (0.52, 0.72, 0.84))):
        for k in (0.0, 0.5, 0.9):
            job(root, "weight", k, seed, 0.8 - 0.3 * k, curve=curve)


def test_the_per_epoch_plot_draws_the_dense_phase_once_and_marks_the_pruned_model(
    tmp_path, monkeypatch
):
    epoch_sweep(tmp_path)
    seen = axes_by_plot(monkeypatch)
    make_report(tmp_path)
    plot = seen[epoch_plot_name("test", "weight")]
    from_epoch_one = [line for line in plot["lines"] if line[1] and line[1][0] == 1.0]
    assert len(from_epoch_one) == 1, "the dense phase is drawn once, not once per k"
    label, x, y, _ = from_epoch_one[0]
    assert label == SHARED_LABEL and x == [1.0, 2.0, 3.0]
    assert y == pytest.approx([51.0, 71.0, 82.0]), "mean over the two seeds"
    stars = [line for line in plot["lines"] if line[3] == "*"]
    assert len(stars) == 3 and all(line[1] == [3.0] for line in stars), "at the last epoch"
    assert sorted(line[2][0] for line in stars) == pytest.approx([53.0, 65.0, 80.0])
    assert plot["xlim"][1] < 4, "no fake epoch after the last"
    assert plot["xlabel"] == "epoch" and plot["ticks"] == ["1", "2", "3"]
    assert FINAL_LABEL in plot["legend"] and "band: ± 1 std over 2 seeds" in plot["legend"]
    assert {"0 %", "50 %", "90 %"} <= set(plot["legend"]), "each k named once"


def curves_of(rows: list[tuple[float, int, int, float]], finals: dict[float, float]) -> Any:
    """``read.epoch_curves``'s frame for one group: (k, seed, epoch, acc) rows, then each
    k's final evaluation at the last epoch."""
    last = max(r[2] for r in rows)
    per_epoch = [{"sparsity": k, "seed": s, "epoch": e, "test/acc": a, "final": False}
                 for k, s, e, a in rows]  # fmt: skip
    final = [{"sparsity": k, "seed": 0, "epoch": last, "test/acc": a, "final": True}
             for k, a in finals.items()]  # fmt: skip
    return pd.DataFrame(per_epoch + final)


def test_fine_tuned_ks_leave_the_shared_dense_phase_where_they_were_pruned():
    # two dense epochs shared by both k, then one fine-tune epoch each
    rows = [(k, 0, e, a) for k in (0.5, 0.9) for e, a in ((1, 0.6), (2, 0.8))]
    rows += [(0.5, 0, 3, 0.79), (0.9, 0, 3, 0.70)]
    lines = epoch_lines(curves_of(rows, {0.5: 0.79, 0.9: 0.70}), "test")
    assert lines.shared is not None and lines.shared.x == [1.0, 2.0]
    assert {k: s.x for k, s in lines.by_k.items()} == {0.5: [2.0, 3.0], 0.9: [2.0, 3.0]}
    assert lines.by_k[0.9].mean.tolist() == pytest.approx([0.8, 0.7])
    assert {k: s.x for k, s in lines.final.items()} == {0.5: [3.0], 0.9: [3.0]}


def test_ks_pruned_from_the_first_step_share_no_dense_phase():
    rows = [(0.5, 0, 1, 0.6), (0.5, 0, 2, 0.8), (0.9, 0, 1, 0.4), (0.9, 0, 2, 0.6)]
    lines = epoch_lines(curves_of(rows, {0.5: 0.8, 0.9: 0.6}), "test")
    assert lines.shared is None and sorted(lines.by_k) == [0.5, 0.9]
    assert lines.by_k[0.5].x == [1.0, 2.0]


def test_the_k_axis_fits_the_swept_k(tmp_path, monkeypatch):
    two_seeds(tmp_path, ks=(0.5, 0.7, 0.9))
    seen = axes_by_plot(monkeypatch)
    make_report(tmp_path)
    for name in (sparsity_plot_name("weight"), TEST_COMPARISON):
        plot = seen[name]
        assert plot["ticks"] == ["50", "70", "90"], name
        lo, hi = plot["xlim"]
        assert 0.3 < lo < 0.5 and 0.9 < hi < 0.95, (name, plot["xlim"])
        assert not plot["inverted"] and plot["xlabel"].startswith("sparsity k")


def test_every_figure_says_what_its_bands_are(tmp_path, monkeypatch):
    two_seeds(tmp_path, sparsity__effective=0.5, flops__compact=1e4, flops__sparse=2e4)
    seen = axes_by_plot(monkeypatch)
    out = make_report(tmp_path)
    drawn = sorted(p.name for p in out.glob("*.png"))
    assert sorted(seen) == drawn and len(drawn) == 8
    for name, plot in seen.items():
        assert "band: ± 1 std over 2 seeds" in plot["legend"], name


def test_the_drop_plot_puts_unit_pruning_at_its_effective_compression(tmp_path, monkeypatch):
    # unit pruning at k = 50 % masks half the weights but kills 75 %: 4×, not 2×
    for seed in (0, 1):
        job(tmp_path, "neuron", 0.0, seed, 0.9, sparsity__global=0.0, sparsity__effective=0.0)
        job(tmp_path, "neuron", 0.5, seed, 0.8, sparsity__global=0.5, sparsity__effective=0.75)
    seen = axes_by_plot(monkeypatch)
    make_report(tmp_path)
    assert seen[DROP_PLOT]["x"] == [pytest.approx([1.0, 4.0])]
    assert seen[DROP_PLOT]["xlabel"] == EFFECTIVE_COMPRESSION_LABEL


def test_without_effective_sparsity_the_drop_axis_says_it_is_nominal(tmp_path, monkeypatch):
    for seed in (0, 1):
        job(tmp_path, "neuron", 0.0, seed, 0.9)
        job(tmp_path, "neuron", 0.5, seed, 0.8)
    seen = axes_by_plot(monkeypatch)
    make_report(tmp_path)
    assert seen[DROP_PLOT]["x"] == [pytest.approx([1.0, 2.0])]
    assert "nominal for unit pruning" in seen[DROP_PLOT]["xlabel"]


def test_each_method_has_one_spelling_in_labels_and_file_names(tmp_path, monkeypatch):
    for strategy in ("snip", "grasp", "synflow", "lamp"):
        two_seeds(tmp_path, strategy, ks=(0.0, 0.9))
    seen = axes_by_plot(monkeypatch)
    out = make_report(tmp_path)
    names = " ".join(p.name for p in out.iterdir())
    md = (out / "report.md").read_text()
    legends = " ".join(t for plot in seen.values() for t in [*plot["legend"], plot["title"]])
    for right, wrong in (("SNIP", "Snip"), ("GraSP", "Grasp"), ("SynFlow", "Synflow"),
                         ("LAMP", "Lamp")):  # fmt: skip
        assert f"Test_Accuracy_{right}_Pruning.png" in names
        assert f"## {right}\n" in md and right in legends
        for text in (names, md, legends):
            assert wrong not in text, (wrong, text[:200])

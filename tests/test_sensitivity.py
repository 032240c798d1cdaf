"""The sensitivity scan (schedule=sensitivity): member (l, k) is layer l pruned alone at k,
exactly as a one-shot run with that per-layer profile prunes it; the budget rule; the budget's
override line as a run takes it; the report's table, plot and budgets; a finished scan is not
scanned again; bad settings are one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from prunelab.config import check_argv, load
from prunelab.errors import ConfigError
from prunelab.job_data import load_data, loaders, new_member
from prunelab.report.make import make_report
from prunelab.results import MODEL_FILE, RESULT_FILE, read_result
from prunelab.scans import (
    BUDGET_FILE,
    TABLE_FILE,
    budget,
    dense_dir,
    global_sparsity,
    layer_budget,
    override_line,
    scan_members,
)
from prunelab.sensitivity import load_dense, scan_batches, scan_stack
from prunelab.workflows import run_job

from .conftest import train_cli

TINY = ("model.sizes=[784,32,16,10]", "data.limit=300", "data.batch_size=100",
        "schedule.epochs=1", "optim.average_fraction=0")  # fmt: skip
SCAN = ("schedule=sensitivity", "schedule.grid=[0.5,0.9]", *TINY)
CONV = ("model.name=tests.plugin_model:TinyConv", "data.limit=300", "data.batch_size=100",
        "schedule.epochs=1", "optim.average_fraction=0")  # fmt: skip


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A scan of seeds 0 and 1 through the command line (a Hydra sweep), trained once."""
    root = tmp_path_factory.mktemp("scan")
    ran = train_cli("-m", *SCAN, "seed=0,1", f"hydra.sweep.dir={root / 'sweep'}",
                    f"paths.cache_dir={root / 'cache'}")  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    jobs = sorted(p.parent for p in (root / "sweep").glob(f"*/{RESULT_FILE}"))
    return root, jobs


def scan_of(job_dir):
    return json.loads((job_dir / RESULT_FILE).read_text())["sensitivity"]


def dense_masks_of(cfg, out):
    """The scan job of ``cfg`` (folder ``out``) as a checked job, its data and dense model."""
    job = load(cfg)
    raw = load_data(job)
    net = load_dense(dense_dir(out) / MODEL_FILE, new_member(job, raw, job.seed))
    return job, raw, net


@pytest.mark.parametrize(("settings", "layer", "k"), [
    ((), 1, 0.9),  # magnitude on the challenge MLP's stack
    ((*CONV, "strategy=snip", "schedule=sensitivity", "schedule.grid=[0.5,0.9]"), 0, 0.5),
], ids=["magnitude-mlp", "snip-conv"])  # fmt: skip
def test_member_l_k_is_the_one_shot_run_with_that_layer_alone(sweep, make_cfg, tmp_path,
                                                              settings, layer, k):  # fmt: skip
    """Masks and accuracies of the scan's member equal those of an ordinary one-shot run of
    the same dense model with strategy.layer_sparsity = k in that layer, 0 elsewhere (for SNIP,
    a criterion that scores on data, its batches too); only that layer changes."""
    root, jobs = sweep
    if settings:  # a scan of its own: a conv net (the vmap stack) and a data-driven criterion
        cfg = make_cfg(*settings)
        run_job(cfg)
        out, cache = tmp_path / "run", tmp_path / "cache"
    else:
        cfg = make_cfg(*SCAN, f"paths.output_dir='{jobs[0]}'", f"paths.cache_dir={root / 'cache'}")
        out, cache = jobs[0], root / "cache"
    job, raw, dense = dense_masks_of(cfg, out)
    n_pruned = len(dense.masks()) - 1
    profile = [k if i == layer else 0.0 for i in range(n_pruned)]
    weights = [w.numel() for w in dense.weights()][:n_pruned]
    g = global_sparsity(profile, weights)
    base = settings[:-2] if settings else TINY
    separate = make_cfg(*base, "schedule=oneshot", f"strategy.layer_sparsity={profile}",
                        f"sparsity={g}", f"paths.output_dir={tmp_path / 'alone'}",
                        f"paths.cache_dir={cache}", *(["strategy.allocation=uniform"]
                                                      if settings else []))  # fmt: skip
    alone = run_job(separate)
    state = torch.load(tmp_path / "alone" / MODEL_FILE, weights_only=True)
    expected = [m for name, m in state.items() if "mask" in name]

    members = scan_members(n_pruned, job.schedule.grid)
    j = members.index((layer, k))
    train, _ = loaders(job, raw, torch.device("cpu"), [job.seed])
    stack = scan_stack(job, dense, members, scan_batches(job, train), torch.device("cpu"))
    got = [mask[j] for mask in stack.all_masks()]
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert torch.equal(a, b), f"layer {i}"
        assert bool(a.all()) == (i != layer), "only the scanned layer is pruned"
        assert torch.equal(stack.layers[i].weight[j] * a, dense.weights()[i] * a)
    assert int((~got[layer]).sum()) == round(k * got[layer].numel())
    [row] = [r for r in scan_of(out)["rows"] if r["layer"] == layer + 1 and r["k"] == k]
    assert row["val_acc"] == alone["val_acc"] and row["test_acc"] == alone["test_acc"]
    assert row["pruned"] == pytest.approx(alone["figures"][f"sparsity/layer{layer + 1}"])


def test_the_budget_is_the_largest_k_before_the_first_that_drops_too_much():
    assert layer_budget([(0.5, 0.1), (0.25, -0.2), (0.9, 0.4), (0.95, 2.0)], 0.5) == 0.9
    assert layer_budget([(0.5, 0.8), (0.9, 0.1)], 0.5) == 0.0, "a bump after a failure is noise"
    assert layer_budget([(0.5, 0.6), (0.9, 0.1)], 0.5) == 0.0
    assert layer_budget([(0.5, 0.5)], 0.5) == 0.5, "the limit itself is within it"
    rows = [{"layer": n, "k": k, "val_drop": d} for n, k, d in [
        (1, 0.5, 0.0), (1, 0.9, 0.3), (1, 0.99, 4.0),
        (2, 0.5, 0.2), (2, 0.9, 1.5), (2, 0.99, 0.1),
        (3, 0.5, 3.0), (3, 0.9, 9.0), (3, 0.99, 20.0),
    ]]  # fmt: skip
    assert budget(rows, 0.5, [1, 2, 3]) == [0.9, 0.5, 0.0]
    assert budget(rows, 5.0, [1, 2, 3]) == [0.99, 0.99, 0.5]
    assert global_sparsity([0.9, 0.5, 0.0], [800, 100, 100]) == pytest.approx(0.77)


def test_the_override_line_composes_into_a_run_with_the_budget(sweep, make_cfg, tmp_path):
    _, jobs = sweep
    record = json.loads((jobs[0] / BUDGET_FILE).read_text())
    assert record["split"] == "val" and record["layers"] == ["layers.0", "layers.1"]
    line = record["override"].split()
    job = load(make_cfg(*TINY, *line))
    assert job.strategy.layer_sparsity == record["layer_sparsity"]
    assert job.sparsity == pytest.approx(record["sparsity"], abs=5e-5)
    check_argv([*TINY, *line, f"hydra.run.dir={tmp_path / 'r'}"])
    g = global_sparsity([0.9, 0.5], [784 * 32, 32 * 10])
    line = override_line([0.9, 0.5], g, "global", prune_output=True).split()
    assert line[:2] == ["strategy.prune_output=true", "strategy.allocation=uniform"]
    job = load(make_cfg(*TINY, "strategy=global_weight", "model.sizes=[784,32,10]", *line))
    assert job.strategy.layer_sparsity == [0.9, 0.5] and job.strategy.allocation == "uniform"


def test_the_report_shows_the_table_the_plot_and_the_budgets(sweep, tmp_path):
    root, jobs = sweep
    out = make_report(root / "sweep", tmp_path / "report")
    text = (out / "report.md").read_text()
    assert "## Sensitivity: each layer pruned alone" in text
    assert "2 of 2 jobs finished" in text, "the scans' dense runs are not jobs of the sweep"
    row = next(line for line in text.splitlines() if line.startswith("| L2 `layers.1` | 512 |"))
    assert row.count("±") == 2, "mean ± std over the two seeds at each k"
    for job in jobs:
        assert json.loads((job / BUDGET_FILE).read_text())["override"] in text
    assert "the mean drop over the 2 seeds" in text and "![Sensitivity](Sensitivity.png)" in text
    assert (out / "Sensitivity.png").stat().st_size > 10_000
    table = pd.read_csv(out / TABLE_FILE)
    assert len(table) == 2 * 2 * 2 and set(table["seed"]) == {0, 1}
    assert pd.read_csv(jobs[0] / TABLE_FILE).shape == (4, 9)
    assert (out / "summary.csv").read_text().strip() == "", "a scan is no pruned model"


def test_a_finished_scan_is_returned_without_scanning_again(sweep, make_cfg, monkeypatch):
    root, jobs = sweep
    before = (jobs[0] / TABLE_FILE).stat().st_mtime_ns, read_result(jobs[0])

    def refuse(*args):
        raise AssertionError("scanned again")

    monkeypatch.setattr("prunelab.sensitivity.scan", refuse)
    cfg = make_cfg(*SCAN, f"paths.output_dir='{jobs[0]}'", f"paths.cache_dir={root / 'cache'}")
    assert run_job(cfg) == before[1]
    assert (jobs[0] / TABLE_FILE).stat().st_mtime_ns == before[0]


@pytest.mark.parametrize(("overrides", "message"), [
    (("schedule.grid=[]",), "schedule.grid is empty: give the sparsities to scan"),
    (("schedule.grid=[0.5,1.0]",), "schedule.grid must be a list of numbers in [0, 1)"),
    (("schedule.grid=[0.5,0.5]",), "schedule.grid=[0.5, 0.5] repeats a value"),
    (("schedule.max_drop=-1",), "schedule.max_drop must be ≥ 0"),
    (("schedule.finetune_epochs=1",), "schedule=sensitivity prunes the dense model once"),
    (("strategy.layer_sparsity=[0.5,0.5]", "sparsity=0.5"),
     "schedule=sensitivity prunes each layer alone"),
    (("model.name=tests.plugin_model:Residual", "strategy=neuron"),
     "cannot prune units of a.weight: its output feeds a sum"),
])  # fmt: skip
def test_bad_scan_settings_are_refused_in_one_line(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as e:
        check_argv([*SCAN, *overrides, f"hydra.run.dir={tmp_path / 'run'}"])
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()

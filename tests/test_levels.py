"""Iterative magnitude pruning with rewinding (schedule=imp): the levels' masks and starts,
the controls, the rewind point, and a job that resumes level by level."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from prunelab.config import load
from prunelab.errors import ConfigError
from prunelab.levels import LEVELS_DIR, REWIND_FILE, START_FILE, SUMMARY_FILE, level_dir
from prunelab.nets import seeded_mlp
from prunelab.optimizers import offset_factor
from prunelab.results import MODEL_FILE, RESULT_FILE
from prunelab.workflows import group_jobs, run_job, run_jobs

SIZES = [784, 32, 16, 10]
TINY = ("schedule=imp", "schedule.epochs=2", "schedule.levels=2", "model.sizes=[784,32,16,10]",
        "data.limit=300", "data.batch_size=100", "optim.average_fraction=0",
        "inference_batch_size=null")  # fmt: skip


def state(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def masks(path) -> list[torch.Tensor]:
    s = state(path)
    return [s[f"layers.{i}.mask"] for i in range(len(SIZES) - 1)]


@pytest.fixture(scope="module")
def imp_run(tmp_path_factory):
    """One IMP job of 2 levels with both controls, trained once for the tests below."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from prunelab.config import CONF_DIR

    root = tmp_path_factory.mktemp("imp")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"paths.output_dir={root / 'run'}",
                                                        *TINY])  # fmt: skip
    GlobalHydra.instance().clear()
    return cfg, root / "run", run_job(cfg)


def test_each_level_removes_a_fifth_of_what_remains_in_each_layer(imp_run):
    _, out, result = imp_run
    rows = json.loads((out / SUMMARY_FILE).read_text())
    assert [(r["level"], r["arm"]) for r in rows] == [
        (0, "ticket"), (1, "ticket"), (1, "random"), (1, "reinit"),
        (2, "ticket"), (2, "random"), (2, "reinit"),
    ]  # fmt: skip
    for level in (1, 2):
        kept = [int(m.sum()) for m in masks(level_dir(out, level, "ticket") / MODEL_FILE)]
        for n_kept, (a, b) in zip(kept[:2], [(784, 32), (32, 16)], strict=True):
            assert n_kept == a * b - round((1 - 0.8**level) * a * b)
        assert kept[2] == 16 * 10, "the output layer is not pruned"
    assert result["sparsity"] == pytest.approx(0.36)
    assert result["levels"] == rows and all("best_val_epoch" in r for r in rows)
    assert result["test_acc"] == rows[4]["test_acc"], "the job's figures are its last ticket's"


def test_a_ticket_prunes_within_the_last_one_and_rewinds_to_the_dense_start(imp_run):
    _, out, _ = imp_run
    one = masks(level_dir(out, 1, "ticket") / MODEL_FILE)
    two = masks(level_dir(out, 2, "ticket") / MODEL_FILE)
    assert all(bool((b & ~a).sum() == 0) for a, b in zip(one, two, strict=True)), "nested"
    rewind = state(out / LEVELS_DIR / REWIND_FILE)
    start = state(level_dir(out, 2, "ticket") / START_FILE)
    for i, m in enumerate(two):
        assert torch.equal(start[f"layers.{i}.weight"], rewind[f"layers.{i}.weight"] * m)
    dense = state(level_dir(out, 0, "ticket") / MODEL_FILE)
    assert not torch.equal(dense["layers.0.weight"], rewind["layers.0.weight"]), "trained"
    for i, layer in enumerate(seeded_mlp(SIZES, 0).layers):  # rewind epoch 0: the init itself
        assert torch.equal(rewind[f"layers.{i}.weight"], layer.weight.detach()), i
    # level 2 prunes the trained level-1 ticket by its magnitudes, not its rewound start
    trained = state(level_dir(out, 1, "ticket") / MODEL_FILE)
    for i, (a, b) in enumerate(zip(one[:2], two[:2], strict=True)):
        w = trained[f"layers.{i}.weight"].abs()
        assert w[a & ~b].max() <= w[b].min(), i


def test_the_controls_keep_the_tickets_counts_or_its_mask(imp_run):
    _, out, _ = imp_run
    ticket = masks(level_dir(out, 2, "ticket") / START_FILE)
    random = state(level_dir(out, 2, "random") / START_FILE)
    reinit = state(level_dir(out, 2, "reinit") / START_FILE)
    rewind = state(out / LEVELS_DIR / REWIND_FILE)
    for i, m in enumerate(ticket[:2]):
        r = random[f"layers.{i}.mask"]
        assert int(r.sum()) == int(m.sum()) and not torch.equal(r, m), "same count, other places"
        assert torch.equal(random[f"layers.{i}.weight"], rewind[f"layers.{i}.weight"] * r)
        assert torch.equal(reinit[f"layers.{i}.mask"], m)
        w = reinit[f"layers.{i}.weight"]
        assert not torch.equal(w, rewind[f"layers.{i}.weight"] * m), "fresh initial weights"
        assert torch.equal(w == 0, ~m | (w == 0)) and bool((w[m] != 0).all())


def test_an_imp_job_resumes_level_by_level(imp_run):
    cfg, out, result = imp_run
    lost = level_dir(out, 2, "reinit") / RESULT_FILE
    stamps = {p: p.stat().st_mtime_ns for p in (out / LEVELS_DIR).rglob(RESULT_FILE) if p != lost}
    lost.unlink()
    (out / RESULT_FILE).unlink()
    again = run_job(cfg)
    redone = [p for p in stamps if p.exists() and p.stat().st_mtime_ns != stamps[p]]
    assert redone == [] and lost.exists(), "only the lost level trained again"
    assert again["levels"][:6] == result["levels"][:6]
    assert again["levels"][6]["test_acc"] == result["levels"][6]["test_acc"], "deterministic"
    assert run_job(cfg)["finished_at"] == again["finished_at"], "a finished job is returned"


def test_a_later_rewind_point_shortens_the_retrain_and_shifts_its_rate(make_cfg, tmp_path):
    result = run_job(make_cfg(*TINY, "schedule.levels=1", "schedule.controls=false",
                              "schedule.epochs=3", "schedule.rewind_epoch=1"))  # fmt: skip
    out = tmp_path / "run"
    level = json.loads((level_dir(out, 1, "ticket") / RESULT_FILE).read_text())
    assert level["epochs"] == 2 and level["config"]["schedule"]["offset"] == 1.0
    assert result["levels"][0]["epochs"] == 3
    r0_dir = f"paths.output_dir={tmp_path / 'r0'}"
    init = run_job(make_cfg(*TINY, "schedule.levels=1", "schedule.controls=false",
                            "schedule.epochs=3", r0_dir))  # fmt: skip
    assert init["levels"][0]["test_acc"] == result["levels"][0]["test_acc"], "same dense level"
    r1 = state(out / LEVELS_DIR / REWIND_FILE)["layers.0.weight"]
    r0 = state(tmp_path / "r0" / LEVELS_DIR / REWIND_FILE)["layers.0.weight"]
    assert not torch.equal(r0, r1), "rewound to epoch 1, not to the init"


def test_offset_factor_continues_the_schedule_and_holds_its_last_epoch():
    def cosine(e: float) -> float:
        return float(int(e))

    assert offset_factor(cosine, 1.0, 3, 0.5) == 1.0
    assert offset_factor(cosine, 1.0, 3, 1.2) == 2.0
    assert offset_factor(cosine, 1.5, 3, 2.0) == 2.0, "held at the last epoch"


def test_imp_jobs_cannot_share_a_stack_and_check_the_rewind_epoch(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="rewind_epoch=2 must be below"):
        load(make_cfg(*TINY, "schedule.rewind_epoch=2"))
    cfgs = [make_cfg(*TINY, f"seed={s}", f"paths.output_dir={tmp_path / str(s)}")
            for s in (0, 1)]  # fmt: skip
    outcomes = run_jobs(cfgs)
    assert all(isinstance(o, ConfigError) and "cannot share a stack" in str(o) for o in outcomes)
    assert group_jobs([*cfgs, make_cfg("seed=3"), make_cfg("seed=4")], 8) == [[2, 3], [0], [1]]


def test_the_report_draws_every_level_and_leaves_the_level_runs_out_of_its_main_table(imp_run):
    from prunelab.report.make import make_report

    _, out, result = imp_run
    report = make_report(out, out / "report-imp")
    text = (report / "report.md").read_text()
    assert (report / "IMP_Levels.png").stat().st_size > 0
    # levels.csv: every level and arm of the job, with the numbers its result.json holds
    rows = pd.read_csv(report / "levels.csv")
    assert list(zip(rows["level"], rows["arm"], strict=True)) == [
        (r["level"], r["arm"]) for r in result["levels"]
    ]
    assert (rows["seed"] == result["seed"]).all()
    for key in ("test_acc", "test_acc_at_best_val", "best_val_epoch", "kept_all"):
        assert rows[key].tolist() == pytest.approx([r[key] for r in result["levels"]]), key
    table = text[text.index("## Iterative magnitude pruning") :].splitlines()
    head = next(line for line in table if line.startswith("| level"))
    assert all(arm in head for arm in ("ticket", "random", "reinit"))
    assert sum(line.startswith("| 2 |") for line in table) == 1
    assert "1 of 1 jobs finished" in text, "the level runs are not jobs of the sweep"


def test_a_global_allocation_removes_a_fifth_of_all_pruned_weights_and_a_step_rewinds(
    make_cfg, tmp_path
):
    result = run_job(make_cfg(*TINY, "schedule.levels=1", "schedule.controls=false",
                              "strategy=global_weight", "schedule.rewind_step=1"))  # fmt: skip
    out = tmp_path / "run"
    kept = [int(m.sum()) for m in masks(level_dir(out, 1, "ticket") / MODEL_FILE)]
    total = 784 * 32 + 32 * 16
    assert kept[0] + kept[1] == total - round(0.2 * total)
    assert kept[0] != round(0.8 * 784 * 32), "one threshold over both layers, not 20 % each"
    level = json.loads((level_dir(out, 1, "ticket") / RESULT_FILE).read_text())
    assert level["config"]["schedule"]["offset"] == pytest.approx(1 / 3), "3 steps an epoch"
    assert level["epochs"] == 2, "a rewind inside the first epoch retrains the whole budget"
    init = torch.load(out / LEVELS_DIR / REWIND_FILE, weights_only=True)["layers.0.weight"]
    from prunelab.nets import seeded_mlp

    assert not torch.equal(init, seeded_mlp(SIZES, 0).layers[0].weight.detach()), "step 1"
    assert result["levels"][1]["sparsity"] == pytest.approx(0.2)

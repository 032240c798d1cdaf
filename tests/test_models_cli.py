"""Any model from the command line: LeNet-5 and a model from outside ``src/`` train, prune
under every schedule, stack and report with no edit to prunelab; a stack of conv members
gives each the result of its separate run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import open_dict

from prunelab.run import run_job, run_jobs
from tests.conftest import train_cli

QUICK = ["data.limit=200", "data.batch_size=50", "dense_cache=false", "save_model=false",
         "inference_batch_size=null"]  # fmt: skip
TINY = ["hydra.searchpath=[file://tests/plugin_conf]", "model=tiny_conv"]
SCHEDULES = {
    "oneshot": ["schedule.epochs=1", "schedule.finetune_epochs=1"],
    "init": ["schedule.epochs=1", "strategy=snip"],
    "gradual": ["schedule.epochs=0", "schedule.ramp_epochs=1", "schedule.prune_every_epochs=0.5"],
    "iterative": ["schedule.epochs=0", "schedule.ramp_epochs=2"],
    "lottery": ["schedule.epochs=1", "schedule.finetune_epochs=1", "schedule.reinit=true"],
    "set": ["schedule.epochs=1", "schedule.update_every_steps=2"],
    "rigl": ["schedule.epochs=1", "schedule.update_every_steps=2"],
    "imp": [
        "schedule.epochs=2",
        "schedule.levels=1",
        "schedule.controls=true",
        "schedule.rewind_epoch=1",
    ],
}


def result(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_a_model_from_outside_src_trains_under_every_schedule(tmp_path, schedule):
    ran = train_cli(*TINY, *QUICK, f"schedule={schedule}", *SCHEDULES[schedule],
                    "sparsity=0.8", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    r = result(tmp_path)
    assert r["config"]["model"]["name"] == "tests.plugin_model:TinyConv"
    if schedule == "imp":  # one level of level_fraction 0.2, with both controls
        assert {(row["level"], row["arm"]) for row in r["levels"]} == {
            (0, "ticket"), (1, "ticket"), (1, "random"), (1, "reinit")
        }  # fmt: skip
        assert r["sparsity"] == pytest.approx(0.2)
    else:
        assert r["sparsity_global"] == pytest.approx(0.8, abs=0.01)
    assert 0.0 <= r["test_acc"] <= 1.0


def test_lenet5_sweeps_stacked_and_reports(tmp_path):
    sweep = tmp_path / "sweep"
    ran = train_cli("-m", "model=lenet5", *QUICK, "schedule.epochs=1", "sparsity=0,0.9",
                    "strategy=weight,neuron", "hydra/launcher=stacked",
                    f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    folders = sorted(p.parent for p in sweep.glob("*/result.json"))
    assert len(folders) == 4
    neuron = result(next(f for f in folders if "neuron" in f.name and "0.9" in f.name))
    assert neuron["dead_units_layer2"] == 45  # 90 % of conv2's 50 channels
    assert neuron["sparsity_effective"] > neuron["sparsity_global"]  # dead inputs count too
    from prunelab.report.__main__ import main as report

    report([str(sweep)])
    assert "unit (neuron) pruning" in (sweep / "report" / "report.md").read_text()


def test_a_stack_of_conv_members_gives_each_its_separate_run(make_cfg, tmp_path):
    """Three LeNet-5 members (two sparsities, two seeds) in float64: stacked, each member's
    masks and final losses are those of its run alone."""
    jobs = [("weight", 0.5, 0), ("neuron", 0.7, 1), ("weight", 0.9, 1)]

    def cfgs(where: str) -> list:
        out = []
        for strategy, k, seed in jobs:
            cfg = make_cfg("model=lenet5", *QUICK, "schedule.epochs=1",
                           "schedule.finetune_epochs=1", f"strategy={strategy}", f"sparsity={k}",
                           f"seed={seed}", "trainer.precision=64-true")  # fmt: skip
            with open_dict(cfg):
                cfg.paths.output_dir = str(tmp_path / where / f"{strategy}_{k}_{seed}")
            out.append(cfg)
        return out

    stacked = run_jobs(cfgs("stacked"))
    for cfg, together in zip(cfgs("alone"), stacked, strict=True):
        alone = run_job(cfg)
        for key in ("train_loss", "val_loss", "test_loss"):
            assert together[key] == pytest.approx(alone[key], abs=1e-5), key
        assert together["sparsity_effective"] == alone["sparsity_effective"]


def test_unit_pruning_of_a_model_whose_units_feed_a_sum_is_refused_in_one_line(tmp_path):
    ran = train_cli("model.name=tests.plugin_model:Residual", "strategy=neuron", *QUICK,
                    "schedule.epochs=1", "sparsity=0.5", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert ran.returncode != 0
    last = ran.stderr.strip().splitlines()[-1]
    assert "cannot prune units of a.weight: its output feeds a sum" in last


def test_an_argument_of_your_model_is_added_with_a_plus(tmp_path):
    ran = train_cli("model.name=tests.plugin_model:TinyConv", "model.args.width=6", *QUICK,
                    f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert ran.returncode == 2
    assert ran.stderr.strip() == (
        "error: model.args.width is a new key of model.args: add it with +model.args.width=6"
    )
    ran = train_cli("model.name=tests.plugin_model:TinyConv", "+model.args.width=6", *QUICK,
                    "schedule.epochs=1", "sparsity=0.5", f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert result(tmp_path)["config"]["model"]["args"] == {"width": 6}

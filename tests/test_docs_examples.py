"""The handbook's worked examples run: each plug-in of ``docs/examples/`` (a criterion, an
allocation, a schedule, a dataset, a model, each with its YAML under ``docs/examples/conf``)
is selected from the command line, trains a tiny run on the example dataset, and does what
its page (``docs/extending/*.md``) says. The pages include these very files, so what the
handbook shows is what this test runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from .conftest import ROOT, train_cli

EXAMPLES = ROOT / "docs" / "examples"
SEARCHPATH = f"hydra.searchpath=[file://{EXAMPLES / 'conf'}]"
# The example dataset (docs/examples/my_dataset.py) keeps every run small and offline.
QUICK = (SEARCHPATH, "data=bars", "data.limit=600", "data.batch_size=100", "dense_cache=false",
         "save_model=false", "inference_batch_size=null")  # fmt: skip


def run(tmp_path: Path, *args: str) -> dict:
    ran = train_cli(*QUICK, *args, f"hydra.run.dir={tmp_path}", cwd=ROOT)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return json.loads((tmp_path / "result.json").read_text())


def per_epoch_sparsity(folder: Path) -> list[float]:
    rows = pd.read_csv(folder / "metrics.csv").dropna(subset=["sparsity/global"])
    return rows.groupby("epoch")["sparsity/global"].last().round(4).tolist()


def test_every_example_file_is_included_in_a_page():
    pages = "".join(p.read_text() for p in (ROOT / "docs" / "extending").glob("*.md"))
    examples = [p for p in EXAMPLES.rglob("*") if p.suffix in {".py", ".yaml"}]
    assert examples
    for path in examples:
        assert f'--8<-- "{path.relative_to(ROOT).as_posix()}"' in pages, path


def test_the_example_dataset_trains_and_is_learnable(tmp_path):
    r = run(tmp_path, "model.sizes=[784,32,10]", "schedule.epochs=2", "sparsity=0")
    assert r["dataset"] == "bars" and r["data_source"] == "generated:bars"
    assert r["test_acc"] > 0.5  # ten bar positions: far above chance after two epochs


def test_the_example_criterion_removes_whole_units(tmp_path):
    r = run(tmp_path, "strategy=unit_linf", "model.sizes=[784,32,16,10]", "schedule.epochs=1",
            "sparsity=0.5")  # fmt: skip
    assert r["config"]["strategy"]["criterion"] == "docs.examples.my_criterion:UnitLinf"
    assert r["figures"]["dead_units/layer1"] == 16
    assert r["figures"]["dead_units/layer2"] == 8


def test_the_example_allocation_halves_the_last_layers_k(tmp_path):
    allocation = "strategy.allocation=docs.examples.my_allocation:LastLayerHalf"
    r = run(tmp_path, "strategy=weight", allocation, "model.sizes=[784,32,16,10]",
            "schedule.epochs=1", "sparsity=0.8")  # fmt: skip
    assert r["figures"]["sparsity/layer1"] == pytest.approx(0.8, abs=1e-3)
    assert r["figures"]["sparsity/layer2"] == pytest.approx(0.4, abs=1e-3)


def test_the_example_schedule_raises_the_sparsity_in_steps(tmp_path):
    r = run(tmp_path, "schedule=linear_steps", "schedule.ramp_epochs=2", "strategy=weight",
            "model.sizes=[784,32,10]", "sparsity=0.6")  # fmt: skip
    assert r["config"]["schedule"]["ramp_epochs"] == 2  # the plug-in's own setting
    # 1 dense epoch, 2 ramp epochs (k/2, then k), 1 fine-tune epoch at k
    assert per_epoch_sparsity(tmp_path) == [0.0, 0.3, 0.6, 0.6]


def test_the_example_model_prunes_its_channels(tmp_path):
    r = run(tmp_path, "model=small_conv", "+model.args.width=6", "strategy=neuron",
            "schedule.epochs=1", "schedule.finetune_epochs=1", "sparsity=0.5")  # fmt: skip
    assert r["config"]["model"]["name"] == "docs.examples.my_model:SmallConvNet"
    assert r["figures"]["dead_units/layer1"] == 3  # 3 of the conv's 6 channels
    assert 0.0 <= r["test_acc"] <= 1.0

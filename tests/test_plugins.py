"""Extension points: a criterion, a schedule and a dataset defined outside ``src/``
(``tests/plugin_methods.py`` and the YAML files of ``tests/plugin_conf``) are selected from
the command line, train, and are reported, with no edit to prunelab."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from prunelab.errors import ConfigError
from prunelab.registry import Registry
from prunelab.report.__main__ import main as report_main
from prunelab.results import RESULT_FILE

from .conftest import ROOT, train_cli

PLUGIN_CONF = ROOT / "tests" / "plugin_conf"


@pytest.fixture(scope="module")
def plugin_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugins")
    proc = train_cli(
        "-m", f"hydra.searchpath=[file://{PLUGIN_CONF}]", "data=blobs",
        "schedule=half_then_full", "strategy=unit_l1,neuron", "model.sizes=[784,32,10]",
        "sparsity=0,0.5", "schedule.step_epochs=2", f"hydra.sweep.dir={root / 'sweep'}",
        f"paths.cache_dir={root / 'cache'}", cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "sweep"


def test_a_plugin_criterion_schedule_and_dataset_train_from_the_command_line(plugin_sweep):
    results = [json.loads(p.read_text()) for p in plugin_sweep.rglob(RESULT_FILE)]
    assert len(results) == 4
    for r in results:
        assert r["dataset"] == "blobs" and r["data_source"] == "generated:blobs"
        assert r["config"]["schedule"]["step_epochs"] == 2  # the plug-in's own setting
        assert r["config"]["strategy"]["criterion"] in ("tests.plugin_methods:UnitL1", "unit_l2")
    pruned = next(r for r in results if r["strategy"] == "unit_l1" and r["sparsity"] == 0.5)
    # the plug-in criterion removed whole units: half of the 32 hidden ones
    assert pruned["figures"]["dead_units/layer1"] == 16
    # the plug-in schedule: half of k for step_epochs epochs after the dense one, then k
    job = next(p.parent for p in plugin_sweep.rglob(RESULT_FILE)
               if "strategy=unit_l1" in str(p) and "sparsity=0.5" in str(p))  # fmt: skip
    rows = pd.read_csv(job / "metrics.csv").dropna(subset=["sparsity/global"])
    per_epoch = rows.groupby("epoch")["sparsity/global"].last().round(4).tolist()
    assert per_epoch == [0.0, 0.25, 0.25, 0.5]


def test_the_report_draws_the_plugin_strategy(plugin_sweep):
    assert report_main([str(plugin_sweep)], write=lambda _: None) == 0
    report = plugin_sweep / "report"
    assert (report / "Accuracy_vs_Sparsity_for_Unit_L1_Pruning.png").is_file()
    assert (report / "Test_Accuracy_Unit_L1_Pruning.png").is_file()
    text = (report / "report.md").read_text()
    assert "unit_l1" in text
    # the criterion follows the strategy's name: not a group of its own
    assert "strategy.criterion=" not in text


def test_a_plugin_that_cannot_be_imported_is_refused_in_one_line(tmp_path):
    proc = train_cli("strategy.criterion=tests.no_such_module:Score", f"hydra.run.dir={tmp_path}")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert (
        len(lines) == 1 and "cannot import the criterion 'tests.no_such_module:Score'" in lines[0]
    )


def test_a_plugin_of_the_wrong_kind_is_refused(tmp_path):
    proc = train_cli("strategy.criterion=tests.plugin_methods:BLOBS", f"hydra.run.dir={tmp_path}")
    assert proc.returncode != 0
    assert "unknown strategy.criterion 'tests.plugin_methods:BLOBS'" in proc.stderr


def test_a_registry_names_its_choices_and_accepts_import_paths():
    reg: Registry[type] = Registry("thing", "x.thing", lambda o: isinstance(o, type))
    reg.add("a", int)
    assert reg.get("a") is int and "a" in reg and "b" not in reg
    assert reg.get("builtins:str") is str
    with pytest.raises(ConfigError, match=r"unknown x.thing 'b'; choose one of: a,"):
        reg.get("b")
    with pytest.raises(ConfigError, match="builtins has no 'nothing_here'"):
        reg.get("builtins:nothing_here")


def test_an_installed_package_registers_through_the_entry_point_group(monkeypatch):
    from prunelab import registry
    from prunelab.criteria import CRITERIA, Magnitude

    class EntryPoint:  # importlib.metadata's view of a package's prunelab.plugins entry
        def load(self):
            CRITERIA.add("from_a_package", Magnitude)

    asked = []
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(
        registry, "entry_points", lambda group: asked.append(group) or [EntryPoint()]
    )
    try:
        assert CRITERIA.get("from_a_package") is Magnitude
        assert asked == ["prunelab.plugins"]
    finally:
        CRITERIA._items.pop("from_a_package", None)

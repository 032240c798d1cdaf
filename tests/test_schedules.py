"""Schedules: the cubic ramp is exact at its ends and middle; every schedule ends at exactly k."""

from __future__ import annotations

import pytest
import torch

from prunelab.config import strategy_method
from prunelab.nets import MaskedMLP, StackedMLP
from prunelab.results import MODEL_FILE
from prunelab.run import run_job
from prunelab.schedules import (
    GradualSchedule,
    IterativeSchedule,
    cubic_ramp,
    iterative_prunes_after,
    iterative_releases_at,
    target_sparsity,
)


def test_cubic_ramp_is_zhu_and_gupta_at_its_ends_and_middle():
    assert cubic_ramp(100, 100, 300, 0.9) == 0.0
    assert cubic_ramp(300, 100, 300, 0.9) == 0.9
    assert cubic_ramp(200, 100, 300, 0.9) == pytest.approx(0.9 * (1 - 0.5**3), abs=1e-15)
    assert cubic_ramp(150, 100, 300, 0.8) == pytest.approx(0.8 * (1 - 0.75**3), abs=1e-15)
    assert cubic_ramp(50, 100, 300, 0.9) == 0.0 and cubic_ramp(400, 100, 300, 0.9) == 0.9


def test_target_sparsity_steps_only_on_pruning_steps():
    spe, k = 10, 0.9  # 10 steps per epoch; dense 2 epochs, ramp 2 epochs, prune every 5 steps
    targets = [target_sparsity(s, spe, k, 2, 2, 5) for s in range(0, 50)]
    assert targets[:25] == [None] * 25, "dense, then nothing pruned at the ramp's start"
    assert targets[25:30] == [pytest.approx(cubic_ramp(25, 20, 40, k))] * 5
    assert targets[35] == pytest.approx(cubic_ramp(35, 20, 40, k))
    assert targets[40:] == [k] * 10
    assert target_sparsity(19, spe, k, 2) is None and target_sparsity(20, spe, k, 2) == k
    # prune_every_epochs is a share of an epoch: 0.25 of 20 steps is every 5th step
    assert GradualSchedule(prune_every_epochs=0.25).steps_between_prunes(20) == 5


def _assert_exact(result: dict, run, k: float) -> None:
    for layer in range(1, 5):
        assert result["figures"][f"sparsity/layer{layer}"] == pytest.approx(k, abs=1e-4)
    net = MaskedMLP(result["config"]["model"]["sizes"])
    net.load_state_dict(torch.load(run / MODEL_FILE, weights_only=True))
    for layer in net.layers[:-1]:
        assert int((~layer.mask).sum()) == round(k * layer.mask.numel())
        assert int((layer.weight[~layer.mask] != 0).sum()) == 0


@pytest.mark.parametrize("finetune", [0, 1])
def test_gradual_reaches_exactly_k_and_logs_the_ramp(make_cfg, tmp_path, finetune):
    import pandas as pd

    cfg = make_cfg(
        "schedule=gradual", "schedule.epochs=1", "schedule.ramp_epochs=2",
        f"schedule.finetune_epochs={finetune}", "schedule.prune_every_epochs=0.001",
        "data.limit=1024", "data.batch_size=128", "sparsity=0.9",
    )  # fmt: skip
    result = run_job(cfg)
    _assert_exact(result, tmp_path / "run", 0.9)
    per_epoch = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["sparsity/global"])
    ramp = per_epoch["sparsity/global"].round(4).tolist()
    assert ramp[0] == 0.0 and 0.0 < ramp[1] < ramp[2] <= 0.9, "dense, then rising"
    assert ramp == sorted(ramp) and ramp[-1] == pytest.approx(0.9, abs=1e-3)
    assert result["ramp_epochs"] == 2


def test_a_control_strategy_plugs_in_through_config_alone(make_cfg, tmp_path):
    result = run_job(make_cfg("strategy=random_neuron", "sparsity=0.5", "data.limit=300",
                            "schedule.epochs=1"))  # fmt: skip
    assert result["strategy"] == "random_neuron"
    net = MaskedMLP(result["config"]["model"]["sizes"])
    net.load_state_dict(torch.load(tmp_path / "run" / MODEL_FILE, weights_only=True))
    assert [int((~layer.mask).all(dim=1).sum()) for layer in net.layers] == [500, 500, 250, 100, 0]


def test_iterative_prunes_at_each_window_epoch_end_and_releases_in_between():
    spe = 10  # dense 1 epoch, window 3 epochs, then fine-tuning
    prunes = [s for s in range(0, 80) if iterative_prunes_after(s, spe, 1, 3)]
    releases = [s for s in range(0, 80) if iterative_releases_at(s, spe, 1, 3)]
    assert prunes == [20, 30, 40], "after the last step of each window epoch, never in dense"
    assert releases == [20, 30], "lifted at the start of every window epoch but the first"
    iterative = IterativeSchedule(epochs=1, ramp_epochs=3)
    assert iterative.lr_epochs == 4 and GradualSchedule(epochs=1, ramp_epochs=3).lr_epochs == 1


def test_released_masks_let_pruned_weights_grow_back():
    torch.manual_seed(0)
    net = MaskedMLP([6, 5, 3])
    net.prune(strategy_method("weight"), 0.6)
    pruned = ~net.layers[0].mask.clone()
    net.release()
    net(torch.randn(8, 6)).square().sum().backward()
    assert net.layers[0].mask.all()
    assert (net.layers[0].weight[pruned] == 0).all(), "release keeps pruned weights at 0"
    assert (net.layers[0].weight.grad[pruned] != 0).any(), "…but they get gradients again"


def test_iterative_reaches_exactly_k_and_every_epoch_is_evaluated_at_k(
    make_cfg, tmp_path, monkeypatch
):
    import pandas as pd

    live = []  # member 0's nonzero weights of layer 0 before each prune
    prune = StackedMLP.prune

    def spy(self, *args, **kwargs):
        live.append(int(self.layers[0].weight[0].count_nonzero()))
        return prune(self, *args, **kwargs)

    monkeypatch.setattr(StackedMLP, "prune", spy)
    cfg = make_cfg("schedule=iterative", "schedule.ramp_epochs=3", "schedule.finetune_epochs=1",
                   "data.limit=1024", "data.batch_size=128", "sparsity=0.8")  # fmt: skip
    result = run_job(cfg)
    _assert_exact(result, tmp_path / "run", 0.8)
    per_epoch = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["sparsity/global"])
    assert per_epoch["sparsity/global"].round(4).tolist() == [0.8] * 4
    assert result["schedule"] == "iterative" and result["ramp_epochs"] == 3
    sizes = result["config"]["model"]["sizes"]
    n = sizes[0] * sizes[1]
    assert len(live) == 3, "one prune after each window epoch"
    assert all(c > round(0.2 * n) for c in live[1:]), f"masks lifted, pruned weights regrew: {live}"

"""Per-layer sparsity (``strategy.layer_sparsity``) and pruning the output layer
(``strategy.prune_output``): exact per layer, the output layer only when asked, bad profiles
refused in one line."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from prunelab.config import check_argv, strategy_method
from prunelab.errors import ConfigError
from prunelab.nets import MaskedMLP
from prunelab.run import run_job

LENET = [784, 300, 100, 10]
HAN = [0.92, 0.91, 0.74]  # Han et al. 2015, LeNet-300-100: fc1 8 %, fc2 9 %, fc3 26 % kept


def pruned_fractions(net: MaskedMLP) -> list[int]:
    return [int((~layer.mask).sum()) for layer in net.layers]


def fresh(sizes=LENET, seed=0) -> MaskedMLP:
    torch.manual_seed(seed)
    return MaskedMLP(sizes)


@pytest.mark.parametrize("strategy", ["weight", "random_weight"])
def test_each_layer_loses_exactly_its_own_share_of_weights(strategy):
    net = fresh()
    net.prune(strategy_method(strategy), HAN, prune_output=True)
    n = [layer.mask.numel() for layer in net.layers]
    assert pruned_fractions(net) == [round(k * m) for k, m in zip(HAN, n, strict=True)]
    for layer in net.layers:
        assert int((layer.weight[~layer.mask] != 0).sum()) == 0
    if strategy == "weight":  # and within a layer, the smallest |w| go
        for layer in net.layers:
            w = layer.weight.detach().abs()
            assert w[~layer.mask].max() <= w[layer.mask].min()


def test_unit_pruning_takes_one_share_of_units_per_layer():
    net = fresh([784, 40, 20, 10])
    net.prune(strategy_method("neuron"), [0.5, 0.25])
    rows_gone = [int((~layer.mask).all(dim=1).sum()) for layer in net.layers]
    assert rows_gone == [20, 5, 0]


def test_the_output_layer_is_pruned_only_when_asked():
    kept = fresh()
    kept.prune(strategy_method("weight"), 0.5)
    assert bool(kept.layers[-1].mask.all()), "default: the output layer is never pruned"
    assert pruned_fractions(kept)[:2] == [round(0.5 * 784 * 300), round(0.5 * 300 * 100)]
    asked = fresh()
    asked.prune(strategy_method("weight"), 0.5, prune_output=True)
    assert pruned_fractions(asked)[2] == 500
    hidden_only = fresh()
    hidden_only.prune(strategy_method("weight"), HAN[:2])
    assert bool(hidden_only.layers[-1].mask.all())


COMMON = (
    "model.sizes=[784,300,100,10]", "strategy.prune_output=true", "data.limit=512",
    "data.batch_size=128", "inference_batch_size=null", "save_model=false",
)  # fmt: skip


@pytest.mark.parametrize(
    "schedule",
    [
        ("schedule.epochs=1",),
        ("schedule=gradual", "schedule.epochs=1", "schedule.ramp_epochs=1",
         "schedule.finetune_epochs=1", "schedule.prune_every_epochs=0.001"),
    ],
    ids=["oneshot", "gradual"],
)  # fmt: skip
def test_a_run_ends_with_the_profile_exactly_in_every_layer(make_cfg, tmp_path, schedule):
    cfg = make_cfg(*COMMON, *schedule, "strategy.layer_sparsity=[0.92,0.91,0.74]", "sparsity=0.918")
    fig = run_job(cfg)["figures"]
    sizes = [784 * 300, 300 * 100, 100 * 10]
    for i, (k, n) in enumerate(zip(HAN, sizes, strict=True)):
        assert fig[f"sparsity/layer{i + 1}"] == round(k * n) / n
    # on the way (a gradual ramp) every layer follows the profile scaled by nominal / final
    rows = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["sparsity/nominal"])
    columns = ["sparsity/nominal", *(f"sparsity/layer{i}" for i in (1, 2, 3))]
    for nominal, *layers in rows[columns].itertuples(index=False):
        pruned = [round(s * n) for s, n in zip(layers, sizes, strict=True)]
        assert pruned == [round(k * nominal / 0.918 * n) for k, n in zip(HAN, sizes, strict=True)]
    kept = sum(round((1 - k) * n) for k, n in zip(HAN, sizes, strict=True))
    assert fig["params/nonzero"] == pytest.approx(kept, abs=3)
    assert fig["sparsity/nominal"] == 0.918


def test_sparsity_zero_with_a_profile_is_its_dense_reference(make_cfg):
    cfg = make_cfg(*COMMON, "schedule.epochs=1", "strategy.layer_sparsity=[0.92,0.91,0.74]",
                   "sparsity=0")  # fmt: skip
    fig = run_job(cfg)["figures"]
    assert [fig[f"sparsity/layer{i}"] for i in (1, 2, 3)] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (("strategy.layer_sparsity=[0.9,0.9]", "sparsity=0.9"), "one value per pruned layer (3"),
        (("strategy.prune_output=false", "strategy.layer_sparsity=[0.9,0.9,0.9]"),
         "one value per pruned layer (2"),
        (("strategy.layer_sparsity=[0.9,1.0,0.5]",),
         "layer_sparsity must be a list of numbers in [0, 1)"),
        (("strategy.layer_sparsity=[0.92,0.91,0.74]", "sparsity=0.5"), "set sparsity=0.918"),
        (("strategy=global_weight", "strategy.prune_output=true",
          "strategy.layer_sparsity=[0.92,0.91,0.74]", "sparsity=0.918"), "global_weight"),
    ],
)  # fmt: skip
def test_a_bad_profile_is_refused_in_one_line(tmp_path, overrides, needle):
    with pytest.raises(ConfigError) as e:
        check_argv([*COMMON, *overrides, f"hydra.run.dir={tmp_path}"])
    assert needle in str(e.value) and "\n" not in str(e.value)

"""``optim.average_fraction``: the dense model is the exact mean of its last epochs' weights."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from prunelab.callbacks import WeightAveraging
from prunelab.config import check_argv
from prunelab.config.schema import OptimConfig
from prunelab.errors import ConfigError
from prunelab.nets import MaskedMLP, StackedMLP
from prunelab.run import run_job


def fake(epoch: int, net: StackedMLP):
    trainer = SimpleNamespace(current_epoch=epoch, num_training_batches=3)
    return trainer, SimpleNamespace(net=net)


def test_the_dense_model_becomes_the_mean_of_the_last_epochs_weights_even_across_a_resume():
    torch.manual_seed(0)
    net = StackedMLP([MaskedMLP([6, 5, 3]), MaskedMLP([6, 5, 3])])
    cb = WeightAveraging(epochs=3, dense_epochs=5)
    seen = []
    for epoch in range(5):
        with torch.no_grad():
            for layer in net.layers:
                layer.weight.add_(torch.randn_like(layer.weight))
        seen.append([layer.weight.detach().clone() for layer in net.layers])
        for batch_idx in range(3):  # only an epoch's last step counts
            cb.on_train_batch_end(*fake(epoch, net), None, None, batch_idx)
        if epoch == 3:  # killed here: a new callback resumes from the checkpointed state
            state = cb.state_dict()
            cb = WeightAveraging(epochs=3, dense_epochs=5)
            cb.load_state_dict(state)
    for i, layer in enumerate(net.layers):
        expected = (seen[2][i] + seen[3][i] + seen[4][i]) / 3
        torch.testing.assert_close(layer.weight.detach(), expected, rtol=1e-6, atol=1e-6)
    assert cb.mean == [] and cb.count == 0, "nothing kept after it is applied"


def test_a_run_with_averaging_trains_its_own_dense_model(make_cfg, tmp_path):
    common = (
        "schedule.epochs=2", "data.limit=512", "data.batch_size=128", "sparsity=0.5",
        "model.sizes=[784,32,10]", "inference_batch_size=null", "save_model=false",
    )  # fmt: skip
    plain = run_job(make_cfg(*common))
    cfg = make_cfg(*common, "optim.average_fraction=1")
    cfg.paths.output_dir = str(tmp_path / "averaged")
    averaged = run_job(cfg)
    assert averaged["dense_cache"] != plain["dense_cache"], "averaging is part of the cache key"
    assert averaged["test_acc"] != plain["test_acc"]


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_bad_averaging_is_refused_in_one_line(tmp_path, value):
    with pytest.raises(ConfigError, match=r"optim.average_fraction must be in \[0, 1\]"):
        check_argv([f"optim.average_fraction={value}", f"hydra.run.dir={tmp_path}"])


def test_the_share_of_epochs_averaged_follows_the_dense_phase():
    optim = OptimConfig(average_fraction=0.6)
    assert [optim.average_epochs(e) for e in (0, 1, 5, 10, 100)] == [0, 1, 3, 6, 60]
    assert OptimConfig(average_fraction=0).average_epochs(10) == 0

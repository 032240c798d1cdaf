"""``finetune_guard``: fine-tuning never leaves a model worse on validation than it found it."""

from __future__ import annotations

import pytest
import torch

from prunelab.config import check_argv
from prunelab.errors import ConfigError
from prunelab.run import run_job

# A rate 300× too high for fine-tuning wrecks the model in one epoch.
COMMON = (
    "schedule.epochs=2", "data.limit=1024", "data.batch_size=128", "model.sizes=[784,64,10]",
    "inference_batch_size=null", "optim.finetune_lr=0.3",
)  # fmt: skip


def run(make_cfg, tmp_path, name: str, *overrides: str) -> dict:
    cfg = make_cfg(*COMMON, *overrides)
    cfg.paths.output_dir = str(tmp_path / name)
    return run_job(cfg)


def weights(tmp_path, name: str) -> dict[str, torch.Tensor]:
    return torch.load(tmp_path / name / "model.pt", weights_only=True)


@pytest.mark.parametrize("k", [0.0, 0.5])
def test_a_fine_tune_that_lowers_validation_accuracy_is_undone(make_cfg, tmp_path, k):
    untuned = run(make_cfg, tmp_path, "untuned", f"sparsity={k}")
    guarded = run(make_cfg, tmp_path, "guarded", f"sparsity={k}", "schedule.finetune_epochs=1")
    wrecked = run(make_cfg, tmp_path, "wrecked", f"sparsity={k}", "schedule.finetune_epochs=1",
                  "finetune_guard=false")  # fmt: skip
    assert wrecked["val_acc"] < untuned["val_acc"], "the fine-tune really does damage"
    assert guarded["finetune_reverted"] == 1.0 and "finetune_reverted" not in wrecked
    assert guarded["finetune_val_before"] == untuned["val_acc"]
    assert guarded["finetune_val_after"] == pytest.approx(wrecked["val_acc"], abs=0.02)
    assert guarded["test_acc"] == untuned["test_acc"] and guarded["val_acc"] == untuned["val_acc"]
    for key, value in weights(tmp_path, "untuned").items():
        assert torch.equal(value, weights(tmp_path, "guarded")[key]), key


def test_a_fine_tune_that_helps_is_kept(make_cfg, tmp_path):
    result = run(make_cfg, tmp_path, "helped", "sparsity=0.9", "strategy=neuron",
                 "schedule.finetune_epochs=2", "optim.finetune_lr=1e-3")  # fmt: skip
    assert result["finetune_reverted"] == 0.0


@pytest.mark.parametrize(
    ("override", "needle"),
    [("finetune_guard=sometimes", "finetune_guard must be true or false"),
     ("finetune_min_correct=-1", "finetune_min_correct must be a whole number ≥ 0"),
     ("finetune_min_correct=0.5", "finetune_min_correct must be a whole number ≥ 0")],
)  # fmt: skip
def test_a_bad_guard_value_is_refused_in_one_line(tmp_path, override, needle):
    with pytest.raises(ConfigError) as e:
        check_argv([override, f"hydra.run.dir={tmp_path}"])
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_gain_below_the_margin_is_noise_and_undone_a_larger_one_kept():
    from types import SimpleNamespace

    from prunelab.callbacks import FinetuneGuard
    from prunelab.nets import MaskedMLP, StackedMLP

    torch.manual_seed(0)
    net = StackedMLP([MaskedMLP([6, 5, 3]), MaskedMLP([6, 5, 3])])
    before = [layer.weight.detach().clone() for layer in net.layers]
    guard = FinetuneGuard(start_epoch=1, min_correct=10)  # of 10 000 validation images
    guard.load_state_dict({"before": before, "before_acc": [0.95, 0.95], "min_gain": 0.001})
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.add_(1.0)
    recorded: dict = {}
    module = SimpleNamespace(
        net=net, figures={"m0/val/acc": 0.9505, "m1/val/acc": 0.952}, record=recorded.update
    )
    guard.on_train_end(None, module)
    assert recorded["m0/final/finetune_reverted"] == 1.0, "+0.05 points: noise"
    assert recorded["m1/final/finetune_reverted"] == 0.0, "+0.2 points: kept"
    for layer, old in zip(net.layers, before, strict=True):
        assert torch.equal(layer.weight[0], old[0]) and torch.equal(layer.weight[1], old[1] + 1)


def test_the_margin_is_min_correct_over_the_validation_images_seen_at_the_first_fine_tune_step():
    """The guard counts its margin in images: at the first fine-tuning step it keeps the
    weights and accuracy, and turns ``min_correct`` into a share of the validation split."""
    import contextlib
    from types import SimpleNamespace

    from torch.utils.data import DataLoader, TensorDataset

    from prunelab.callbacks import FinetuneGuard
    from prunelab.module import member_accuracy
    from prunelab.nets import MaskedMLP, StackedMLP

    torch.manual_seed(0)
    net = StackedMLP([MaskedMLP([6, 5, 3]), MaskedMLP([6, 5, 3])])
    val = DataLoader(TensorDataset(torch.randn(200, 6), torch.randint(0, 3, (200,))), 40)
    trainer = SimpleNamespace(
        global_step=14,  # epoch 2 of 7 steps: the first fine-tuning step
        num_training_batches=7,
        val_dataloaders=val,
        precision_plugin=SimpleNamespace(forward_context=contextlib.nullcontext),
    )
    guard = FinetuneGuard(start_epoch=2, min_correct=10)
    guard.on_train_batch_start(trainer, SimpleNamespace(net=net), None, 0)
    assert guard.min_gain == 10 / 200, "10 more images right of 200"
    assert guard.before_acc == member_accuracy(net, val)[0]
    for layer, before in zip(net.layers, guard.before, strict=True):
        assert torch.equal(layer.weight, before)

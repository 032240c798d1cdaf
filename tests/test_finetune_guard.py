"""``finetune_guard``: fine-tuning never leaves a model worse on validation than it found it."""

from __future__ import annotations

import pytest
import torch

from prunelab.config import check
from prunelab.errors import ConfigError
from prunelab.run import run_job

# A rate 300× too high for fine-tuning wrecks the model in one epoch.
COMMON = (
    "schedule.epochs=2", "data.limit=1024", "data.batch_size=128", "model.sizes=[784,64,10]",
    "inference_batch_size=null", "optim.finetune_lr_scale=300",
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
                 "schedule.finetune_epochs=2", "optim.finetune_lr_scale=1.0")  # fmt: skip
    assert result["finetune_reverted"] == 0.0


def test_a_bad_guard_value_is_refused_in_one_line(make_cfg):
    with pytest.raises(ConfigError, match="finetune_guard must be true or false"):
        check(make_cfg("finetune_guard=sometimes"))

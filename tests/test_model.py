"""Masked MLP and the pruning callback: pruned weights never revive, masks survive checkpoints."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from prunelab.callbacks import PruningCallback
from prunelab.data import BatchLoader
from prunelab.errors import TrainingError
from prunelab.model import MaskedMLP, PruningModule

SMALL = [784, 64, 48, 32, 10]


def test_forward_is_the_seed_formula_relu_x_w():
    torch.manual_seed(0)
    net = MaskedMLP(SMALL)
    net.prune("weight", 0.5)
    x = torch.randn(5, 784)
    h = x
    for layer in net.layers[:-1]:
        h = F.relu(h @ (layer.weight * layer.mask).T)
    expected = h @ net.layers[-1].weight.T
    assert torch.allclose(net(x), expected, atol=1e-6)
    assert all(layer.bias is None for layer in net.layers)


def test_pruned_weights_get_zero_gradient():
    torch.manual_seed(0)
    net = MaskedMLP(SMALL)
    net.prune("neuron", 0.5)
    net(torch.randn(8, 784)).sum().backward()
    for layer in net.layers:
        assert int((layer.weight.grad[~layer.mask] != 0).sum()) == 0


def _fit(strategy: str, tmp_path, finetune_steps: int = 200):
    torch.manual_seed(0)
    x, y = torch.randn(256, 784), torch.randint(0, 10, (256,))
    loader = BatchLoader(x, y, batch_size=32, shuffle=True)  # 8 steps per epoch
    module = PruningModule(SMALL, lr=1e-2)
    module.val_splits = ("val",)
    cb = PruningCallback(strategy, 0.7, prune_after_epochs=1)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1 + finetune_steps // len(loader),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[cb],
        default_root_dir=tmp_path,
    )
    masks_at_prune = {}
    orig_prune = cb.prune

    def spy(trainer, pl_module, *args):
        out = orig_prune(trainer, pl_module, *args)
        masks_at_prune.update({i: m.clone() for i, m in enumerate(pl_module.net.masks())})
        return out

    cb.prune = spy
    trainer.fit(module, train_dataloaders=loader)
    return module, trainer, masks_at_prune


@pytest.mark.parametrize("strategy", ["weight", "neuron"])
def test_pruned_weights_stay_exactly_zero_through_200_adam_steps_and_a_checkpoint(
    strategy, tmp_path
):
    module, trainer, masks_at_prune = _fit(strategy, tmp_path)
    assert trainer.global_step == 8 + 200
    opt = trainer.optimizers[0]
    for i, layer in enumerate(module.net.layers):
        assert torch.equal(layer.mask, masks_at_prune[i])
        assert int((layer.weight[~layer.mask] != 0).sum()) == 0
        state = opt.state[layer.weight]
        assert int((state["exp_avg"][~layer.mask] != 0).sum()) == 0
        assert bool((layer.weight[layer.mask] != 0).any()), "kept weights still train"
    assert int((~module.net.layers[0].mask).sum()) > 0

    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)
    restored = PruningModule(SMALL)
    restored.load_state_dict(state["state_dict"])
    for a, b in zip(restored.net.layers, module.net.layers, strict=True):
        assert torch.equal(a.mask, b.mask)
        assert torch.equal(a.weight, b.weight)
        assert int((a.weight[~a.mask] != 0).sum()) == 0
    assert state["callbacks"]["PruningCallback"]["current"] == 0.7


def test_pruning_happens_before_the_reported_test_even_without_finetuning(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
    module = PruningModule(SMALL)
    cb = PruningCallback("weight", 0.9, prune_after_epochs=1)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[cb],
    )
    trainer.fit(module, BatchLoader(x, y, 32), [BatchLoader(x, y, 32)] * 2)
    assert not cb.pruned, "dense epochs run unpruned"
    trainer.test(module, [BatchLoader(x, y, 32)] * 3, verbose=False)
    assert cb.pruned
    assert cb.figures(module)["sparsity/layer1"] == pytest.approx(0.9, abs=1e-4)


def test_nan_loss_stops_training_with_a_clear_error():
    module = PruningModule(SMALL)
    x = torch.full((4, 784), float("nan"))
    with pytest.raises(TrainingError, match=r"lower optim\.lr"):
        module.training_step((x, torch.zeros(4, dtype=torch.long)), 0)


def test_pruning_callback_refuses_bad_arguments_at_construction():
    with pytest.raises(Exception, match="unknown strategy"):
        PruningCallback("magnitude", 0.5, 1)
    with pytest.raises(Exception, match=r"\[0, 1\)"):
        PruningCallback("weight", 1.0, 1)


def test_lr_decays_over_the_dense_phase_then_again_over_fine_tuning():
    from prunelab.model import lr_factor

    dense = [lr_factor("cosine", 4, 0.5, e, total_epochs=7) for e in range(4)]
    after = [lr_factor("cosine", 4, 0.5, e, total_epochs=7) for e in range(4, 7)]
    assert dense == [lr_factor("cosine", 4, 0.5, e) for e in range(4)], "dense: cache-safe"
    assert dense[0] == 1.0 and dense == sorted(dense, reverse=True)
    assert after == pytest.approx([0.5, 0.375, 0.125]), "restart at the scale, decay again"
    assert lr_factor("constant", 4, 0.5, 5, total_epochs=7) == 0.5

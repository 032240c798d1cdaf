"""``prunelab.lightning.Pruning`` in a ``Trainer`` and ``LightningModule`` written here, not
prunelab's: every schedule it offers, its logging through the user's logger, its checkpoint,
and its masks against Lightning's own ``ModelPruning`` on the same weights."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import ModelCheckpoint, ModelPruning
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import prunelab
from prunelab.lightning import Pruning

HIDDEN = ["conv.weight", "fc1.weight"]


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class Classifier(pl.LightningModule):
    """A user's LightningModule: its network in ``self.net``, SGD with momentum."""

    def __init__(self) -> None:
        super().__init__()
        self.net = Net()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def loader(n: int = 48) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 10, 10, generator=g), torch.randint(0, 3, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=8)


def fit(callbacks: list, epochs: int, tmp_path: Path, seed: int = 0, **kw: object) -> Classifier:
    torch.manual_seed(seed)
    model = Classifier()
    trainer = pl.Trainer(
        max_epochs=epochs, callbacks=callbacks, logger=pl.loggers.CSVLogger(tmp_path, name="log"),
        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks), **kw,
    )  # fmt: skip
    trainer.fit(model, loader())
    return model


def masks_of(module: nn.Module) -> dict[str, torch.Tensor]:
    return {n: b.bool() for n, b in module.named_buffers() if n.endswith("weight_mask")}


def logged(tmp_path: Path) -> pd.DataFrame:
    [csv] = tmp_path.glob("log/*/metrics.csv")
    return pd.read_csv(csv)


@pytest.mark.parametrize("use_global", [False, True])
def test_l1_masks_equal_lightning_model_pruning_on_the_same_weights(tmp_path, use_global):
    """One epoch of the same training; ModelPruning prunes at its end, ours (one-shot, whose
    dense phase outlasts the fit) prunes at the end of training: the same weights."""
    torch.manual_seed(0)
    reference = Classifier()
    theirs = ModelPruning(
        "l1_unstructured", amount=0.6, use_global_unstructured=use_global,
        use_lottery_ticket_hypothesis=False, make_pruning_permanent=False,
        parameters_to_prune=[(reference.net.conv, "weight"), (reference.net.fc1, "weight")],
    )  # fmt: skip
    trainer = pl.Trainer(max_epochs=1, callbacks=[theirs], logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False)  # fmt: skip
    trainer.fit(reference, loader())
    ours = fit([Pruning(0.6, "magnitude", "global" if use_global else "uniform", epochs=1,
                        module="net")], 1, tmp_path)  # fmt: skip
    expected = masks_of(reference)
    assert set(masks_of(ours)) == {f"net.{n}_mask" for n in HIDDEN}
    for name, mask in masks_of(ours).items():
        assert torch.equal(mask, expected[name]), name


@pytest.mark.parametrize(
    ("schedule", "criterion", "allocation", "settings"),
    [
        ("oneshot", "magnitude", "uniform", {"epochs": 1}),
        ("gradual", "magnitude", "uniform", {"epochs": 0, "ramp_epochs": 2, "finetune_epochs": 1}),
        ("iterative", "unit_l2", "uniform", {"ramp_epochs": 2}),
        ("init", "snip", "uniform", {"epochs": 3}),
        ("set", "random", "erk", {"epochs": 3, "update_every_steps": 2}),
        ("rigl", "random", "erk", {"epochs": 3, "update_every_steps": 2}),
    ],
)
def test_every_schedule_reaches_its_sparsity_and_logs_it(
    tmp_path, schedule, criterion, allocation, settings
):
    callback = Pruning(0.75, criterion, allocation, schedule, module="net", **settings)
    model = fit([callback], 3, tmp_path)
    report = prunelab.sparsity_report(model.net)
    assert report.global_sparsity == pytest.approx(0.75, abs=0.02)
    per_epoch = logged(tmp_path).dropna(subset=["pruning/sparsity/global"])
    assert per_epoch["pruning/sparsity/fc1"].iloc[-1] == pytest.approx(report.layers[1].sparsity)
    if schedule == "gradual":  # the cubic ramp: sparser epoch after epoch
        assert per_epoch["pruning/sparsity/global"].is_monotonic_increasing
        assert per_epoch["pruning/sparsity/global"].iloc[0] < 0.75


def test_rigl_moves_weights_and_keeps_each_layers_count(tmp_path):
    seen: list[dict[str, torch.Tensor]] = []

    class Snapshot(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            seen.append({n: m.clone() for n, m in masks_of(module).items()})

    pruning = Pruning(0.8, "random", "erk", "rigl", module="net", epochs=3, update_every_steps=2)
    fit([pruning, Snapshot()], 3, tmp_path)
    first, last = seen[0], seen[-1]
    assert any(not torch.equal(first[n], last[n]) for n in first)
    assert all(int(first[n].sum()) == int(last[n].sum()) for n in first)


def test_a_resumed_fit_restores_the_masks_from_a_weights_only_checkpoint(tmp_path):
    save = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    fit([Pruning(0.5, schedule="oneshot", module="net", epochs=1), save], 2, tmp_path)
    checkpoint = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    keys = set(checkpoint["state_dict"])
    assert keys == set(Classifier().state_dict())  # the user's own keys, no weight_orig
    resumed = Pruning(0.5, schedule="oneshot", module="net", epochs=1)
    torch.manual_seed(0)
    model = Classifier()
    trainer = pl.Trainer(max_epochs=3, callbacks=[resumed], logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False)  # fmt: skip
    trainer.fit(model, loader(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    masks = next(v["masks"] for k, v in checkpoint["callbacks"].items() if "Pruning" in k)
    assert set(masks) == set(HIDDEN)
    for name, mask in masks.items():
        layer = model.net.get_submodule(name.removesuffix(".weight"))
        assert bool((layer.weight_mask <= mask).all())  # what the checkpoint pruned stays pruned
        assert torch.equal(layer.weight_mask, mask)  # and one-shot prunes nothing more


def test_a_fit_shorter_than_the_schedule_is_pruned_at_its_end_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="prunelab.lightning"):
        model = fit([Pruning(0.9, module="net", epochs=5)], 1, tmp_path)
    assert "pruned to it now" in caplog.text
    assert prunelab.sparsity_report(model.net).global_sparsity == pytest.approx(0.9, abs=0.01)


def test_make_permanent_leaves_plain_layers(tmp_path):
    model = fit([Pruning(0.5, module="net", epochs=1, make_permanent=True)], 2, tmp_path)
    assert type(model.net.fc1) is nn.Linear
    assert float((model.net.fc1.weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"schedule": "lottery"}, "retrains from rewound weights"),
        ({"schedule": "sensitivity"}, "is a workflow of several runs"),
        ({"schedule": "imp"}, "is a workflow of several runs"),
        ({"schedule": "gradual", "ramp_epochs": 0}, "schedule.ramp_epochs must be a whole number"),
        ({"schedule": "rigl", "update_every_steps": 0}, "schedule.update_every_steps must be"),
        ({"schedule": "gradual", "ramp_epoch": 2}, "unexpected keyword argument 'ramp_epoch'"),
        ({"schedule": "rigl", "grow": "unit_l2"}, "scores units"),
        ({"schedule": "nope"}, "unknown schedule"),
    ],
)
def test_what_the_callback_cannot_run_is_refused_in_one_line(kwargs, says):
    with pytest.raises(prunelab.PruningError) as e:
        Pruning(0.5, **kwargs)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_a_dataloader_without_length_is_refused_in_one_line(tmp_path):
    class Stream(IterableDataset):
        def __iter__(self):
            g = torch.Generator().manual_seed(0)
            for _ in range(16):
                yield torch.randn(1, 10, 10, generator=g), torch.tensor(1)

    model = Classifier()
    trainer = pl.Trainer(max_epochs=1, callbacks=[Pruning(0.5, module="net")], logger=False,
                         enable_progress_bar=False, enable_checkpointing=False)  # fmt: skip
    with pytest.raises(prunelab.PruningError, match="limit_train_batches"):
        trainer.fit(model, DataLoader(Stream(), batch_size=8))

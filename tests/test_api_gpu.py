"""The public API and its Lightning callback on a CUDA device (``pytest -m gpu``, which
``tools/gpu_check.sh`` runs): masks live where the weights do, magnitude selects what it
selects on the CPU, data on the host is scored on the device, and compaction and export keep
the outputs."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import prunelab
from prunelab.criteria import CRITERIA
from prunelab.lightning import Pruning

from .test_api import SmallCNN, batch, cnn
from .test_lightning_callback import Classifier

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_magnitude_masks_on_the_gpu_equal_the_cpus():
    x = batch()[0]
    on_cpu = prunelab.prune(cnn(), 0.8, example_inputs=x)
    on_gpu = prunelab.prune(cnn().cuda(), 0.8, example_inputs=x.cuda())
    for name, mask in on_gpu.items():
        assert mask.device.type == "cuda" and torch.equal(mask.cpu(), on_cpu[name])


@pytest.mark.parametrize("criterion", CRITERIA.names())
def test_every_criterion_prunes_a_gpu_model_from_host_data(criterion):
    model, (x, y) = cnn().cuda(), batch()
    masks = prunelab.prune(model, 0.5, criterion, data=(x, y))  # data stays on the host
    assert all(m.device.type == "cuda" for m in masks.values())
    assert model.conv1.weight_mask.device.type == "cuda"
    report = prunelab.sparsity_report(model)
    assert report.global_sparsity == pytest.approx(0.5, abs=0.1)
    out = model(x.cuda())
    assert out.device.type == "cuda" and torch.isfinite(out).all()


def test_compact_and_export_keep_a_gpu_models_outputs():
    model, x = cnn().cuda(), batch()[0].cuda()
    prunelab.prune(model, 0.5, "unit_l2", example_inputs=x)
    small = prunelab.compact(model)
    assert next(small.parameters()).device.type == "cuda"
    assert torch.allclose(small(x), model(x), atol=1e-5)
    plain = SmallCNN().cuda()
    plain.load_state_dict(model.state_dict())
    assert torch.allclose(plain(x), model(x), atol=1e-6)
    exported = prunelab.export(model.eval(), "csr")
    assert torch.allclose(exported(x), model(x), atol=1e-4)


SCHEDULES = [("gradual", {"epochs": 0, "ramp_epochs": 2}),
             ("rigl", {"epochs": 3, "update_every_steps": 2})]  # fmt: skip


@pytest.mark.parametrize(("schedule", "settings"), SCHEDULES)
def test_the_callback_prunes_on_the_gpu(tmp_path, schedule, settings):
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(48, 1, 10, 10, generator=g),
                         torch.randint(0, 3, (48,), generator=g))  # fmt: skip
    criterion, allocation = ("random", "erk") if schedule == "rigl" else ("magnitude", "uniform")
    pruning = Pruning(0.75, criterion, allocation, schedule, module="net", **settings)
    model = Classifier()
    trainer = pl.Trainer(accelerator="gpu", devices=1, max_epochs=3, callbacks=[pruning],
                         logger=False, enable_progress_bar=False,
                         enable_checkpointing=False)  # fmt: skip
    trainer.fit(model, DataLoader(data, batch_size=8))
    assert model.net.fc1.weight_mask.device.type == "cuda"
    assert prunelab.sparsity_report(model.net).global_sparsity == pytest.approx(0.75, abs=0.02)
    assert isinstance(model.net.fc2, nn.Linear)

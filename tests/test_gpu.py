"""The CUDA path: device-resident data, stacked training, TF32 and bf16. Skipped without CUDA.

Run with ``pytest -m gpu`` on a machine with a GPU (the default run deselects them).
"""

from __future__ import annotations

import pytest
import torch
from omegaconf import open_dict

import prunelab.train as tr
from prunelab.stacked import train_stacked

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

GPU = ("trainer=gpu", "data.limit=2000", "schedule.epochs=2", "inference_batch_size=null")


def test_data_lives_on_the_device_and_batches_are_slices(make_cfg):
    data = tr.load_run_data(make_cfg(*GPU))
    x, y = next(iter(data.train_loader))
    assert x.is_cuda and y.is_cuda
    assert all(t.is_cuda for loader in data.evals.values() for t in next(iter(loader)))


@pytest.mark.parametrize("extra", [(), ("float32_matmul_precision=high",),
                                   ("trainer.precision=bf16-mixed",)])  # fmt: skip
def test_a_run_trains_on_the_gpu(make_cfg, extra):
    result = tr.train(make_cfg(*GPU, "sparsity=0.5", *extra))
    assert result["test_acc"] > 0.85, "two epochs on 1600 images learn something"
    assert result["figures"]["sparsity/layer1"] == pytest.approx(0.5, abs=1e-4)


def test_stacked_on_the_gpu_equals_separate_runs_on_the_gpu(make_cfg, tmp_path):
    results = {}
    for mode in ("separate", "stacked"):
        cfgs = []
        for strategy, k in (("weight", 0.9), ("neuron", 0.5)):
            cfg = make_cfg(*GPU, "dense_cache=false", "schedule.finetune_epochs=1",
                           f"strategy={strategy}", f"sparsity={k}")  # fmt: skip
            with open_dict(cfg):
                cfg.paths.output_dir = str(tmp_path / mode / strategy)
            cfgs.append(cfg)
        results[mode] = [tr.train(c) for c in cfgs] if mode == "separate" else train_stacked(cfgs)
    for one, many in zip(results["separate"], results["stacked"], strict=True):
        assert many["figures"] == pytest.approx(one["figures"], abs=1e-3)
        assert many["test_acc"] == pytest.approx(one["test_acc"], abs=5e-3)

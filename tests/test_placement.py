"""Device and dtype by construction, checked on every path a fit can start from.

A fit starts fresh, from the dense cache, from its own ``last.ckpt``, or from the cache
expanded over a stack of members. At the start of each, and after every prune while fitting,
every optimizer buffer must have its weight's device and dtype, and masks, metric sums and the
training data must be on the module's device. On the CPU the dtype is what can go wrong
(``trainer.precision=64-true``); ``pytest -m gpu`` runs the same tests on CUDA, where the device
can (an H200 run crashed on it on 2026-11-25).
"""

from __future__ import annotations

import pytest
import torch
from pytorch_lightning.trainer.states import TrainerFn

from prunelab.callbacks import EpochSummary, PruningCallback
from prunelab.config.schema import OptimConfig
from prunelab.module import PruningModule, check_placement, placement_errors
from prunelab.nets import MaskedMLP, StackedMLP
from prunelab.run import run_job, run_jobs
from prunelab.schedules import OneshotSchedule

CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    ],
)
SMALL = "model.sizes=[784,64,32,10]"


def snapshot(module: PruningModule, optimizers) -> dict:
    """Where everything of the run is, at one moment."""
    pairs = [
        (v.device, v.dtype, p.device, p.dtype)
        for opt in optimizers
        for p, state in opt.state.items()
        for v in state.values()
        if isinstance(v, torch.Tensor) and v.shape == p.shape
    ]
    loader = module.trainer.train_dataloader
    return {
        "errors": placement_errors(module, optimizers),
        "state": pairs,
        "device": module.device,
        "dtype": module.net.layers[0].weight.dtype,
        "data": {loader.x.device, loader.y.device},
    }


@pytest.fixture
def seen(monkeypatch) -> list[tuple[str, dict]]:
    """A snapshot at every fit start (after any resume) and after every prune while fitting."""
    found: list[tuple[str, dict]] = []
    start, prune = PruningModule.on_train_start, PruningCallback.prune

    def on_train_start(self):
        found.append(("start", snapshot(self, self.trainer.optimizers)))
        start(self)

    def on_prune(self, trainer, pl_module, *args):
        out = prune(self, trainer, pl_module, *args)
        if trainer.state.fn == TrainerFn.FITTING:
            found.append(("prune", snapshot(pl_module, trainer.optimizers)))
        return out

    monkeypatch.setattr(PruningModule, "on_train_start", on_train_start)
    monkeypatch.setattr(PruningCallback, "prune", on_prune)
    return found


def assert_in_place(seen: list[tuple[str, dict]], device: str, precision: str) -> None:
    dtype = torch.float64 if precision == "64-true" else torch.float32
    resumed = [s for kind, s in seen if kind == "start" and s["state"]]
    assert resumed, "a fit started from saved optimizer state"
    assert any(kind == "prune" for kind, _ in seen), "a prune happened while fitting"
    for kind, s in seen:
        assert s["errors"] == [], (kind, s["errors"])
        assert s["device"].type == device and s["dtype"] == dtype, kind
        assert {d.type for d in s["data"]} == {device}, "the data lives on the module's device"
        for state_device, state_dtype, p_device, p_dtype in s["state"]:
            assert (state_device, state_dtype) == (p_device, p_dtype), kind


def overrides(device: str, precision: str, *extra: str) -> list[str]:
    return [
        f"trainer={'gpu' if device == 'cuda' else 'cpu'}", f"trainer.precision={precision}",
        SMALL, "data.limit=300", "data.batch_size=64", "schedule.epochs=1",
        "schedule.finetune_epochs=2", "inference_batch_size=null", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("precision", ["32-true", "64-true"])
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_a_run_resumed_from_the_dense_cache_has_everything_in_place(
    make_cfg, seen, device, precision
):
    result = run_job(make_cfg(*overrides(device, precision)))
    assert result["dense_cache"] is not None
    assert_in_place(seen, device, precision)


class Crash(Exception):
    """Stands for a kill after an epoch's checkpoint."""


@pytest.mark.parametrize("precision", ["32-true", "64-true"])
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_a_run_resumed_from_its_last_checkpoint_has_everything_in_place(
    make_cfg, seen, monkeypatch, device, precision
):
    real = EpochSummary.on_train_epoch_end

    def dies(self, trainer, pl_module):
        real(self, trainer, pl_module)
        if trainer.current_epoch == 1:
            raise Crash

    cfg = make_cfg(
        *overrides(
            device,
            precision,
            "dense_cache=false",
            "checkpoint_every_n_epochs=1",
            "checkpoint_max_share=1",
        )
    )
    monkeypatch.setattr(EpochSummary, "on_train_epoch_end", dies)
    with pytest.raises(Crash):
        run_job(cfg)
    monkeypatch.setattr(EpochSummary, "on_train_epoch_end", real)
    seen.clear()
    assert run_job(cfg)["resumed_after_epoch"] == 1
    assert_in_place(seen, device, precision)


@pytest.mark.parametrize("precision", ["32-true", "64-true"])
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_a_stack_expanded_from_the_dense_cache_has_everything_in_place(
    make_cfg, tmp_path, seen, device, precision
):
    cfgs = [
        make_cfg(
            *overrides(
                device,
                precision,
                f"strategy={s}",
                f"sparsity={k}",
                f"paths.output_dir={tmp_path / s}",
            )
        )
        for s, k in (("weight", 0.5), ("neuron", 0.9), ("random_weight", 0.7))
    ]
    results = run_jobs(cfgs)
    assert all(isinstance(r, dict) and r["stacked"]["members"] == 3 for r in results), results
    assert_in_place(seen, device, precision)


def test_a_misplaced_optimizer_buffer_is_reported_and_stops_the_fit():
    net = StackedMLP([MaskedMLP([6, 5, 3])])
    module = PruningModule(net, OptimConfig(), OneshotSchedule())
    opt = torch.optim.Adam(module.parameters())
    module.net(torch.randn(4, 6)).sum().backward()
    opt.step()
    assert placement_errors(module, [opt]) == []
    weight = module.net.layers[1].weight
    opt.state[weight]["exp_avg"] = opt.state[weight]["exp_avg"].double()
    errors = placement_errors(module, [opt])
    assert errors == [
        "optimizer exp_avg of net.layers.1.weight is torch.float64 on cpu, its weight "
        "torch.float32 on cpu"
    ]
    with pytest.raises(RuntimeError, match="tensors of the run are misplaced: optimizer exp_avg"):
        check_placement(module, [opt])
    module.sums["test_sums"].correct = module.sums["test_sums"].correct.to("meta")
    assert any("test_sums.correct is on meta" in e for e in placement_errors(module))
    # masks are buffers, not parameters: they are checked too
    module.net.layers[0].mask = module.net.layers[0].mask.to("meta")
    assert any("net.layers.0.mask is on meta" in e for e in placement_errors(module))


def test_placement_is_checked_whenever_a_fit_starts(make_cfg, monkeypatch):
    from prunelab import module as module_py

    checked: list[int] = []
    real = module_py.check_placement
    monkeypatch.setattr(
        module_py, "check_placement", lambda m, o=(): checked.append(1) or real(m, o)
    )
    run_job(make_cfg(SMALL, "data.limit=200", "schedule.epochs=1", "schedule.finetune_epochs=1"))
    assert len(checked) == 3, "the cache build's fit, the run's fit and its test"


@pytest.mark.parametrize("reinit", [False, True])
@pytest.mark.parametrize("precision", ["32-true", "64-true"])
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_a_lottery_ticket_from_the_averaged_dense_cache_has_everything_in_place_after_rewinding(
    make_cfg, seen, monkeypatch, device, precision, reinit
):
    real = PruningModule.rewind

    def rewind(self, fresh=None):
        real(self, fresh)
        seen.append(("rewind", snapshot(self, self.trainer.optimizers)))

    monkeypatch.setattr(PruningModule, "rewind", rewind)
    cfg = make_cfg(
        *overrides(device, precision, "schedule=lottery", "schedule.epochs=2",
                   "optim.average_fraction=1", f"schedule.reinit={str(reinit).lower()}")
    )  # fmt: skip
    result = run_job(cfg)
    assert result["dense_cache"] is not None
    assert any(kind == "rewind" for kind, _ in seen)
    assert_in_place(seen, device, precision)

"""Lottery tickets (``schedule=lottery``): the rewind restores exactly the surviving weights'
values at the rewind epoch, the re-initialised control keeps the mask with new values, and the
snapshot survives the dense cache and stacking."""

from __future__ import annotations

import pytest
import torch

from prunelab.config import check_argv
from prunelab.errors import ConfigError
from prunelab.module import PruningModule
from prunelab.nets import fresh_weights, seeded_mlp
from prunelab.optimizers import lr_factor
from prunelab.run import run_job, run_jobs

SIZES = [784, 48, 24, 10]
COMMON = (
    "schedule=lottery", "schedule.epochs=2", "schedule.finetune_epochs=1", "data.limit=512",
    "data.batch_size=128", "model.sizes=[784,48,24,10]", "inference_batch_size=null",
    "save_model=false", "sparsity=0.8",
)  # fmt: skip


@pytest.fixture
def rewinds(monkeypatch) -> list[dict]:
    """What every lottery rewind left behind: weights, masks and optimizer state, (M, out, in)."""
    seen: list[dict] = []
    real = PruningModule.rewind

    def spy(self, fresh=None):
        real(self, fresh)
        states = [v for s in self.trainer.optimizers[0].state.values() for v in s.values()]
        seen.append(
            {
                "weights": [layer.weight.detach().clone() for layer in self.net.layers],
                "masks": [layer.mask.clone() for layer in self.net.layers],
                "optimizer": [v.clone() for v in states if isinstance(v, torch.Tensor)],
            }
        )

    monkeypatch.setattr(PruningModule, "rewind", spy)
    return seen


def epoch_start_weights(monkeypatch) -> dict[int, list[torch.Tensor]]:
    """Every member's weights at the start of each epoch, as the module saw them."""
    seen: dict[int, list[torch.Tensor]] = {}
    real = PruningModule.on_train_epoch_start

    def spy(self):
        seen.setdefault(self.current_epoch, [w.detach().clone() for w in self.net.parameters()])
        real(self)

    monkeypatch.setattr(PruningModule, "on_train_epoch_start", spy)
    return seen


def init_weights(seed: int) -> list[torch.Tensor]:
    """The initial weights of run ``seed``, drawn as ``wiring.fit`` draws them."""
    return [layer.weight.detach() for layer in seeded_mlp(SIZES, seed).layers]


def test_rewinding_restores_exactly_the_init_values_of_the_surviving_weights(make_cfg, rewinds):
    result = run_job(make_cfg(*COMMON))
    [after] = rewinds
    for i, (w, mask, init) in enumerate(
        zip(after["weights"], after["masks"], init_weights(0), strict=True)
    ):
        w, mask = w[0], mask[0]
        assert torch.equal(w[mask], init[mask]), f"layer {i}: survivors = their init values"
        assert int((w[~mask] != 0).sum()) == 0, f"layer {i}: pruned weights are 0"
        if i < len(SIZES) - 2:
            assert int((~mask).sum()) == round(0.8 * mask.numel())
    assert all(int(v.count_nonzero()) == 0 for v in after["optimizer"]), "a fresh optimizer"
    assert result["schedule"] == "lottery"
    assert result["figures"]["sparsity/layer1"] == pytest.approx(0.8, abs=1e-3)


def test_rewinding_to_epoch_r_restores_the_weights_the_model_had_when_r_began(
    make_cfg, rewinds, monkeypatch
):
    starts = epoch_start_weights(monkeypatch)
    run_job(make_cfg(*COMMON, "schedule.rewind_epoch=1"))
    [after] = rewinds
    for w, mask, snap in zip(after["weights"], after["masks"], starts[1], strict=True):
        assert torch.equal(w[mask], snap[mask])
    assert not torch.equal(starts[1][0], starts[0][0]), "epoch 1 is not the init"


def test_the_reinit_control_keeps_the_mask_and_changes_the_values(make_cfg, tmp_path, rewinds):
    run_job(make_cfg(*COMMON))
    cfg = make_cfg(*COMMON, "schedule.reinit=true")
    cfg.paths.output_dir = str(tmp_path / "reinit")
    run_job(cfg)
    ticket, control = rewinds
    fresh = fresh_weights(SIZES, [0], torch.device("cpu"), torch.float32)
    for t_mask, c_mask, c_w, new, init in zip(
        ticket["masks"], control["masks"], control["weights"], fresh, init_weights(0), strict=True
    ):
        assert torch.equal(t_mask, c_mask), "the same mask (the same dense model)"
        kept = c_mask[0]
        assert torch.equal(c_w[0][kept], new[0][kept]), "the fresh draw on the survivors"
        assert not torch.equal(c_w[0][kept], init[kept]), "not the original init"
        assert int((c_w[0][~kept] != 0).sum()) == 0


def test_a_stack_from_the_dense_cache_rewinds_each_member_to_its_own_init(
    make_cfg, tmp_path, rewinds
):
    cfgs = []
    for seed in (0, 1):
        cfg = make_cfg(*COMMON, f"seed={seed}")
        cfg.paths.output_dir = str(tmp_path / f"seed{seed}")
        cfgs.append(cfg)
    outcomes = run_jobs(cfgs)
    assert all(isinstance(o, dict) for o in outcomes), outcomes
    assert all(o["dense_cache"] for o in outcomes), "the dense phase came from the cache"
    [after] = rewinds
    for m, seed in enumerate((0, 1)):
        for w, mask, init in zip(after["weights"], after["masks"], init_weights(seed), strict=True):
            assert torch.equal(w[m][mask[m]], init[mask[m]])


def test_lottery_retrains_on_the_dense_schedule_from_the_rewind_epoch():
    dense = [
        lr_factor("cosine", 10, 1.0, e, finetune_schedule="cosine", total_epochs=20, rewind_epoch=0)
        for e in range(10)
    ]
    again = [
        lr_factor("cosine", 10, 1.0, e, finetune_schedule="cosine", total_epochs=20, rewind_epoch=0)
        for e in range(10, 20)
    ]
    assert again == dense, "rewound to 0 over as many epochs: the same schedule again"
    late = [
        lr_factor("cosine", 10, 1.0, e, finetune_schedule="cosine", total_epochs=14, rewind_epoch=6)
        for e in range(10, 14)
    ]
    assert late == dense[6:]
    # stretched: 2 retraining epochs replay epochs 6..9 at half speed
    kw = {"finetune_schedule": "cosine", "total_epochs": 12, "rewind_epoch": 6}
    half = [lr_factor("cosine", 10, 1.0, e + f, **kw) for e in (10, 11) for f in (0.0, 0.5)]
    assert half == dense[6:]


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("schedule.rewind_epoch=2", "rewind_epoch=2 must be below schedule.epochs=2"),
        ("schedule.finetune_epochs=0", "schedule.finetune_epochs must be a whole number ≥ 1"),
        ("schedule.rewind_epoch=-1", "schedule.rewind_epoch must be a whole number ≥ 0"),
        ("schedule.reinit=maybe", "schedule.reinit must be true or false"),
    ],
)
def test_bad_lottery_settings_are_refused_in_one_line(tmp_path, override, needle):
    with pytest.raises(ConfigError) as e:
        check_argv([*COMMON, override, f"hydra.run.dir={tmp_path}"])
    assert needle in str(e.value) and "\n" not in str(e.value)

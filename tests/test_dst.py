"""Sparse training from scratch (SET, RigL): the drop-and-grow update on hand-made cases, the
dense gradient RigL grows by, and whole runs (live count per layer constant, grown weights at
0 with a fresh optimizer state, stacked = separate)."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from omegaconf import open_dict

from prunelab.criteria import CRITERIA, ScoreContext
from prunelab.dst import drop_and_grow, update_topology, zero_optimizer_state
from prunelab.nets import MaskedMLP
from prunelab.results import MODEL_FILE
from prunelab.run import run_job, run_jobs
from prunelab.schedules import DynamicSparseSchedule, RigLSchedule, cosine_fraction

SMALL = ("model.sizes=[784,64,32,10]", "data.limit=600", "data.batch_size=50",
         "strategy=random_weight", "strategy.allocation=erk", "schedule.update_every_steps=3",
         "strategy.score_batch_size=40")  # fmt: skip


def test_drop_and_grow_moves_the_lowest_live_to_the_highest_dead_of_a_hand_made_layer():
    mask = torch.tensor([[True, True, True, True, False, False, False, False]]).reshape(1, 2, 4)
    drop = torch.tensor([[5.0, 1.0, 3.0, 2.0, 0.0, 0.0, 0.0, 0.0]]).reshape(1, 2, 4)
    grow = torch.tensor([[9.0, 9.0, 0.0, 0.0, 4.0, 7.0, 1.0, 6.0]]).reshape(1, 2, 4)
    [new], [grown] = drop_and_grow([mask], [drop], [grow], fraction=0.5)
    # live 4 → move 2: drop the two lowest live (index 1 → 1.0, index 3 → 2.0); grow the two
    # highest dead after the drop: index 1 (9.0, just dropped, keeps its value) and 5 (7.0)
    expected = torch.tensor([True, True, True, False, False, True, False, False]).reshape(1, 2, 4)
    assert torch.equal(new, expected)
    assert torch.equal(grown.reshape(-1).nonzero().flatten(), torch.tensor([5]))
    assert int(new.sum()) == int(mask.sum())


def test_each_member_moves_its_own_share_and_keeps_its_live_count():
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(3, 20, 30, generator=gen) < torch.tensor([0.1, 0.3, 0.6])[:, None, None]
    drop, grow = torch.rand(3, 20, 30, generator=gen), torch.rand(3, 20, 30, generator=gen)
    [new], [grown] = drop_and_grow([mask], [drop], [grow], fraction=0.3)
    for i in range(3):
        live = int(mask[i].sum())
        assert int(new[i].sum()) == live
        assert int((mask[i] & ~new[i]).sum()) == int(grown[i].sum()) <= int(0.3 * live)
        [alone], _ = drop_and_grow([mask[i : i + 1]], [drop[i : i + 1]], [grow[i : i + 1]], 0.3)
        assert torch.equal(alone[0], new[i]), "a member's update does not depend on its stack"


def softmax_regression_gradient(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d(mean cross-entropy)/dW of logits x·Wᵀ, written out: (softmax − onehot)ᵀ x / B."""
    p = torch.softmax(x @ w.T, dim=1)
    return (p - F.one_hot(y, w.shape[0]).to(p)).T @ x / len(x)


def test_rigl_grows_exactly_the_top_gradient_dead_weights_of_a_hand_made_case():
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(1, 4, 6, generator=gen, dtype=torch.float64)
    mask = torch.rand(1, 4, 6, generator=gen) < 0.5
    w = w * mask
    x, y = torch.randn(10, 6, generator=gen, dtype=torch.float64), torch.arange(10) % 4
    g = softmax_regression_gradient(w[0], x, y).abs()
    weights, masks = [w.clone()], [mask.clone()]
    grown = update_topology(weights, masks, [0], CRITERIA.get("magnitude")(),
                            CRITERIA.get("gradient")(), 0.5, [0], step=7,
                            batches=[(x, y)])[0][0]  # fmt: skip
    live = int(mask.sum())
    n = live // 2
    dropped = mask[0] & (w[0].abs() <= w[0].abs()[mask[0]].sort().values[n - 1])
    dead = ~mask[0] | dropped
    expected = dead & (g >= g[dead].sort(descending=True).values[n - 1])
    assert int(dropped.sum()) == n
    assert torch.equal(masks[0][0], (mask[0] & ~dropped) | expected)
    assert torch.equal(grown, expected & ~mask[0])
    assert torch.all(weights[0][0][grown] == 0), "grown weights start at 0"
    gone = mask[0] & ~masks[0][0]
    assert bool(gone.any()) and torch.all(weights[0][0][gone] == 0), "dropped weights go to 0"
    assert torch.equal(weights[0][0][masks[0][0] & mask[0]], w[0][masks[0][0] & mask[0]])


def test_grown_weights_get_a_fresh_optimizer_state():
    w = torch.nn.Parameter(torch.ones(1, 2, 3))
    opt = torch.optim.Adam([w])
    w.grad = torch.ones_like(w)
    opt.step()
    grown = torch.zeros(1, 2, 3, dtype=torch.bool)
    grown[0, 1, 2] = True
    zero_optimizer_state(opt, [w], [grown])
    for key in ("exp_avg", "exp_avg_sq"):
        assert opt.state[w][key][grown].eq(0).all() and opt.state[w][key][~grown].ne(0).all()


def test_the_drop_fraction_decays_by_a_cosine_and_updates_stop_at_the_end_step():
    sched = DynamicSparseSchedule(epochs=10, update_every_steps=5, drop_fraction=0.3)
    spe = 20  # end step 0.75 · 200 = 150
    assert sched.topology_update(0, spe) is None, "the first step trains the initial mask"
    assert sched.topology_update(4, spe) is None
    assert sched.topology_update(5, spe) == pytest.approx(cosine_fraction(5, 150, 0.3))
    assert sched.topology_update(75, spe) == pytest.approx(0.15)
    assert sched.topology_update(150, spe) is None and sched.topology_update(200, spe) is None
    assert RigLSchedule().grow == "gradient" and DynamicSparseSchedule().grow == "random"


def nonzero_per_layer(run) -> list[int]:
    net = MaskedMLP([784, 64, 32, 10])
    net.load_state_dict(torch.load(run / MODEL_FILE, weights_only=True))
    return [int(layer.mask.sum()) for layer in net.layers]


@pytest.mark.parametrize("schedule", ["set", "rigl"])
def test_a_run_keeps_each_layers_live_count_while_the_weights_move(make_cfg, tmp_path, schedule):
    result = run_job(make_cfg(f"schedule={schedule}", "schedule.epochs=3", "sparsity=0.9",
                              *SMALL))  # fmt: skip
    rows = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["epoch"])
    layers = ["sparsity/layer1", "sparsity/layer2"]  # the pruned ones (not the output)
    for c in layers:  # the same sparsity (live count) in every epoch
        assert rows[c].nunique() == 1, c
    assert rows["topology/grown"].iloc[0] > 0, "weights moved in the first epoch"
    assert result["figures"]["sparsity/global"] == pytest.approx(0.9, abs=1e-3)
    first = [
        round((1 - rows[c].iloc[0]) * n) for c, n in zip(layers, [784 * 64, 64 * 32], strict=True)
    ]
    assert nonzero_per_layer(tmp_path / "run")[:2] == first
    saved = torch.load(tmp_path / "run" / MODEL_FILE, weights_only=True)
    for i in range(3):  # a dropped weight is 0, not frozen at the value it had
        w, m = saved[f"layers.{i}.weight"], saved[f"layers.{i}.mask"]
        assert bool((w[~m] == 0).all()), f"layer {i}: dead weights that are not 0"


def test_a_run_too_short_for_any_topology_update_says_so(make_cfg, caplog):
    """600 images in batches of 50: 12 steps an epoch, 36 in 3 epochs, updates stopping at
    step 27 (end_fraction 0.75); every 30 steps, none would ever happen."""
    caplog.set_level(logging.WARNING, logger="prunelab")
    schedule = RigLSchedule(epochs=3, update_every_steps=30)
    assert schedule.idle(steps_per_epoch=12) == (
        "schedule=rigl will move no weight: its first topology update is due at step 30 "
        "(schedule.update_every_steps) but updates stop at step 27 (schedule.end_fraction=0.75 "
        "of 36 steps), so it trains its first mask as it is; lower schedule.update_every_steps "
        "or train for more steps"
    )
    assert RigLSchedule(epochs=3, update_every_steps=26).idle(steps_per_epoch=12) is None
    run_job(make_cfg("schedule=rigl", "schedule.epochs=3", "sparsity=0.9", *SMALL,
                     "schedule.update_every_steps=30"))  # fmt: skip
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == [schedule.idle(12)]


def test_a_stack_of_sparse_trainings_equals_its_members_run_alone(make_cfg, tmp_path):
    members = [("rigl", 0.9, 0), ("rigl", 0.8, 1), ("rigl", 0.9, 2)]

    def cfgs(name: str) -> list:
        out = []
        for sched, k, seed in members:
            cfg = make_cfg(f"schedule={sched}", "schedule.epochs=2", f"sparsity={k}",
                           f"seed={seed}", *SMALL)  # fmt: skip
            with open_dict(cfg):
                cfg.paths.output_dir = str(tmp_path / name / f"{k}_{seed}")
            out.append(cfg)
        return out

    separate = [run_job(c) for c in cfgs("separate")]
    stacked = run_jobs(cfgs("stacked"))
    for (_, k, seed), one, many in zip(members, separate, stacked, strict=True):
        assert isinstance(many, dict), many
        assert many["stacked"]["members"] == 3
        a = torch.load(tmp_path / "separate" / f"{k}_{seed}" / MODEL_FILE, weights_only=True)
        b = torch.load(tmp_path / "stacked" / f"{k}_{seed}" / MODEL_FILE, weights_only=True)
        for key in a:
            if key.endswith("mask"):
                assert torch.equal(a[key], b[key]), f"k={k} seed={seed}: {key}"
        assert many["test_acc"] == pytest.approx(one["test_acc"], abs=2e-3)


def test_a_unit_criterion_cannot_drop_or_grow(make_cfg):
    from prunelab.config import load
    from prunelab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"schedule\.grow=unit_l2 scores units"):
        load(make_cfg("schedule=set", "schedule.grow=unit_l2"))
    ctx = ScoreContext([torch.ones(1, 2, 2)], [torch.ones(1, 2, 2, dtype=torch.bool)], [0], [])
    assert CRITERIA.get("gradient").needs_data
    with pytest.raises(ValueError, match="needs data"):
        CRITERIA.get("gradient")().scores(ctx)

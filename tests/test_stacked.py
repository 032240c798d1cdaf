"""Stacked training: M members in one run equal M separate runs, member by member."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
from omegaconf import DictConfig, open_dict

import prunelab.train as tr
from prunelab.errors import ConfigError
from prunelab.model import MaskedMLP
from prunelab.results import MODEL_FILE, RESULT_FILE
from prunelab.stacked import MemberLoggers, StackedMLP, group_jobs, stack_key, train_stacked

from .test_launchers import cli

MEMBERS = [("weight", 0.5), ("neuron", 0.9), ("random_weight", 0.7), ("global_weight", 0.95)]
# 25 steps per epoch (800 samples, batch 32): 2 epochs = 50 steps, pruned after the first.
# float64 (64-true): float32 agrees to ~1e-6 relative per step, and Adam amplifies that over
# 50 steps to ~1e-5 on losses near 14 (a member pruned to 95 %); float64 shows the math is equal.
SIZES = [784, 128, 128, 64, 32, 10]
COMMON = (
    "data.limit=800", "data.batch_size=32", "schedule.epochs=1", "inference_batch_size=null",
    "trainer.precision=64-true", f"model.sizes=[{','.join(map(str, SIZES))}]",
)  # fmt: skip


class LossRecorder(tr.pl.Callback):
    """Every training step's loss, per member: (steps, M)."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        stacked = getattr(pl_module, "last_losses", None)
        self.losses.append(stacked if stacked is not None else outputs["loss"].detach()[None])


@pytest.fixture
def recorded(monkeypatch) -> list[LossRecorder]:
    """Adds a LossRecorder to every Trainer ``train`` and ``train_stacked`` build."""
    recorders: list[LossRecorder] = []
    build = tr.build_trainer

    def with_recorder(cfg, out, max_epochs, callbacks, logger):
        recorders.append(LossRecorder())
        return build(cfg, out, max_epochs, [*callbacks, recorders[-1]], logger)

    monkeypatch.setattr(tr, "build_trainer", with_recorder)
    return recorders


def member_cfgs(make_cfg, tmp_path, name: str, *extra: str) -> list[DictConfig]:
    cfgs = []
    for strategy, k in MEMBERS:
        cfg = make_cfg(f"strategy={strategy}", f"sparsity={k}", *COMMON, *extra)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / name / f"{strategy}_{k}")
        cfgs.append(cfg)
    return cfgs


def load_net(run) -> MaskedMLP:
    net = MaskedMLP(SIZES)
    net.load_state_dict(torch.load(run / MODEL_FILE, weights_only=True))
    return net


@pytest.mark.parametrize(
    "extra",
    [
        ("dense_cache=false", "schedule.finetune_epochs=1"),
        ("schedule=iterative", "schedule.epochs=0", "schedule.ramp_epochs=2"),
        ("dense_cache=true", "schedule.finetune_epochs=2"),  # resumes a stacked dense checkpoint
    ],
    ids=["oneshot-finetune", "iterative", "from-dense-cache"],
)
def test_stacked_members_equal_separate_runs(make_cfg, tmp_path, recorded, extra):
    separate = [tr.train(c) for c in member_cfgs(make_cfg, tmp_path, "separate", *extra)]
    n_single = len(recorded)
    stacked_cfgs = member_cfgs(make_cfg, tmp_path, "stacked", *extra)
    stacked = train_stacked(stacked_cfgs)
    assert all(isinstance(r, dict) for r in stacked), stacked
    # The separate runs' own fits (a dense-cache build, if any, comes first)
    single_losses = [torch.cat(r.losses) for r in recorded[n_single - len(MEMBERS) : n_single]]
    stacked_losses = torch.stack(recorded[-1].losses)  # (steps, M)

    assert stacked_losses.shape == (50, len(MEMBERS)), "50 steps, one loss per member"
    for m, losses in enumerate(single_losses):
        torch.testing.assert_close(stacked_losses[:, m], losses, atol=1e-5, rtol=0)
    for m, (strategy, k) in enumerate(MEMBERS):
        one, many = separate[m], stacked[m]
        assert many["strategy"] == strategy and many["sparsity"] == k
        assert many["stacked"]["members"] == len(MEMBERS) and many["stacked"]["index"] == m
        assert many["figures"] == one["figures"], "same masks, same sparsity figures"
        for split in ("train", "val", "test"):
            assert many[f"{split}_acc"] == pytest.approx(one[f"{split}_acc"], abs=2e-3)
        a = load_net(tmp_path / "separate" / f"{strategy}_{k}")
        b = load_net(tmp_path / "stacked" / f"{strategy}_{k}")
        for la, lb in zip(a.layers, b.layers, strict=True):
            assert torch.equal(la.mask, lb.mask), f"{strategy} k={k}: masks differ"
            torch.testing.assert_close(la.weight, lb.weight, atol=1e-4, rtol=0)
        rows = (tmp_path / "stacked" / f"{strategy}_{k}" / "metrics.csv").read_text()
        assert "train/acc" in rows.splitlines()[0] and "m0/" not in rows, "a separate run's log"


def test_jobs_are_stacked_only_when_they_differ_in_strategy_and_sparsity(make_cfg):
    a = make_cfg("strategy=weight", "sparsity=0.5")
    b = make_cfg("strategy=neuron", "sparsity=0.9")
    c = make_cfg("strategy=weight", "sparsity=0.5", "seed=1")
    d = make_cfg("strategy=weight", "sparsity=0.5", "optim.lr=0.01")
    assert stack_key(a) == stack_key(b) != stack_key(c) != stack_key(d)
    assert group_jobs([a, b, c, d, a], max_members=64) == [[0, 1, 4], [2], [3]]
    assert group_jobs([a, b, a, b, a], max_members=2) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ConfigError, match="max_members must be ≥ 1"):
        group_jobs([a], max_members=0)


def test_a_stack_of_jobs_that_differ_in_more_is_refused_in_one_line(make_cfg, tmp_path):
    cfgs = member_cfgs(make_cfg, tmp_path, "mixed")
    with open_dict(cfgs[1]):
        cfgs[1].seed = 3
    outcomes = train_stacked(cfgs)
    assert all(isinstance(o, ConfigError) for o in outcomes)
    assert "differ only in strategy and sparsity" in str(outcomes[0])
    assert (tmp_path / "mixed" / "weight_0.5" / "error.txt").is_file()


def test_member_loggers_route_prefixed_keys_to_their_member():
    class Sink(tr.Logger):
        name, version = "sink", 0

        def __init__(self):
            super().__init__()
            self.rows = []

        def log_hyperparams(self, *a, **k):
            pass

        def log_metrics(self, metrics, step=None):
            self.rows.append((dict(metrics), step))

    sinks = [Sink(), Sink()]
    MemberLoggers(sinks).log_metrics({"m0/val/acc": 0.5, "m1/val/acc": 0.7, "epoch": 3}, step=9)
    assert sinks[0].rows == [({"epoch": 3, "val/acc": 0.5}, 9)]
    assert sinks[1].rows == [({"epoch": 3, "val/acc": 0.7}, 9)]


def test_unstack_and_load_member_round_trip():
    torch.manual_seed(0)
    nets = [MaskedMLP([6, 5, 3]) for _ in range(3)]
    nets[1].prune("neuron", 0.4)
    stack = StackedMLP(nets)
    x = torch.randn(4, 6)
    torch.testing.assert_close(stack(x), torch.stack([n(x) for n in nets]))
    one = stack.unstack(1)
    assert torch.equal(one.layers[0].mask, nets[1].layers[0].mask)
    stack.member(2).prune("weight", 0.5)
    assert stack.member(2).sparsity(0.5)["sparsity/layer1"] == pytest.approx(0.5, abs=0.04)
    assert stack.unstack(0).layers[0].mask.all(), "other members untouched"
    assert stack.double().unstack(1).layers[0].weight.dtype == torch.float64, "dtype kept"


def test_stacked_launcher_runs_a_sweep_into_per_job_results_and_resumes(tmp_path):
    sweep = tmp_path / "sweep"
    args = (
        "-m", "experiment=smoke", "hydra/launcher=stacked", "strategy=weight,neuron",
        "sparsity=0,0.9", "seed=0,1", f"hydra.sweep.dir={sweep}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    )  # fmt: skip
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob(f"*/{RESULT_FILE}")}
    assert len(results) == 8, sorted(results)  # smoke: 2 seeds → 2 stacks of 4
    assert {r["stacked"]["members"] for r in results.values()} == {4}
    assert {r["seed"] for r in results.values()} == {0, 1}
    assert "stacked run of 4 members" in (sweep / "stacked.log").read_text()
    before = {name: r["finished_at"] for name, r in results.items()}
    again = cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    after = {p.parent.name: json.loads(p.read_text())["finished_at"]
             for p in sweep.glob(f"*/{RESULT_FILE}")}  # fmt: skip
    assert after == before, "finished jobs are not trained again"
    report = subprocess.run(
        [sys.executable, "-m", "prunelab.report", str(sweep)], capture_output=True, text=True
    )
    assert report.returncode == 0, report.stderr
    assert "8 of 8 jobs finished" in (sweep / "report" / "report.md").read_text()


class Crash(Exception):
    """Stands for a kill: raised from inside a stacked run at a chosen epoch."""


def test_a_stacked_run_killed_mid_training_resumes_from_its_last_checkpoint(
    make_cfg, tmp_path, monkeypatch
):
    from prunelab import stacked

    extra = ("dense_cache=false", "schedule.epochs=2", "schedule.finetune_epochs=1")
    straight = train_stacked(member_cfgs(make_cfg, tmp_path, "straight", *extra))
    real = stacked.StackedSummary.on_train_epoch_end

    def dies(self, trainer, pl_module):
        real(self, trainer, pl_module)
        if trainer.current_epoch == 2:
            raise Crash

    monkeypatch.setattr(stacked.StackedSummary, "on_train_epoch_end", dies)
    cfgs = member_cfgs(make_cfg, tmp_path, "killed", *extra, "checkpoint_every_n_epochs=1")
    assert all(isinstance(o, Crash) for o in train_stacked(cfgs))
    assert len(list((tmp_path / "killed").rglob("last.ckpt"))) == 1
    assert not list((tmp_path / "killed").rglob(RESULT_FILE))

    monkeypatch.setattr(stacked.StackedSummary, "on_train_epoch_end", real)
    resumed = train_stacked(cfgs)
    for a, b in zip(straight, resumed, strict=True):
        assert b["resumed_after_epoch"] == 2
        assert b["figures"] == a["figures"]
        for key in ("train_acc", "val_acc", "test_acc", "test_loss"):
            assert b[key] == pytest.approx(a[key], abs=1e-9), key
    rows = pd.read_csv(tmp_path / "killed" / "weight_0.5" / "metrics.csv")
    assert set(rows.dropna(subset=["val/acc"])["epoch"]) == {0, 1, 2}, "earlier rows kept"

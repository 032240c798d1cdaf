"""Batching: M jobs trained as one stack equal M runs of one, member by member.

A run of one job and a stack of many go through the same orchestrator and module, so what
these tests check is the batching alone: the member axis, the summed loss, the routing of logs.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from omegaconf import DictConfig, open_dict
from pytorch_lightning.loggers import Logger

from prunelab.config import load, stack_key
from prunelab.errors import ConfigError
from prunelab.logs import MemberLoggers
from prunelab.module import PruningModule
from prunelab.nets import MaskedMLP
from prunelab.report.__main__ import main as report_main
from prunelab.results import MODEL_FILE, RESULT_FILE
from prunelab.run import group_jobs, run_job, run_jobs

from .conftest import train_cli as cli

MEMBERS = [("weight", 0.5), ("neuron", 0.9), ("random_weight", 0.7), ("global_weight", 0.95)]
# 25 steps per epoch (800 samples, batch 32): 2 epochs = 50 steps, pruned after the first.
# float64 (64-true): float32 agrees to ~1e-6 relative per step, and Adam amplifies that over
# 50 steps to ~1e-5 on losses near 14 (a member pruned to 95 %); float64 shows the math is equal.
SIZES = [784, 128, 128, 64, 32, 10]
COMMON = (
    "data.limit=800", "data.batch_size=32", "schedule.epochs=1", "inference_batch_size=null",
    "trainer.precision=64-true", f"model.sizes=[{','.join(map(str, SIZES))}]",
)  # fmt: skip


@pytest.fixture
def recorded(monkeypatch) -> dict[int, list[torch.Tensor]]:
    """Every training step's per-member losses (M,), one list per module, in build order."""
    per_module: dict[int, list[torch.Tensor]] = {}
    alive: list[PruningModule] = []  # held, so that no later module gets a recorded id
    real = PruningModule._evaluate

    def spy(self, split, batch, nets=()):
        losses = real(self, split, batch, nets)
        if self.training:  # the training steps, not the final evaluation of the train split
            if id(self) not in per_module:
                alive.append(self)
            per_module.setdefault(id(self), []).append(losses.detach().clone())
        return losses

    monkeypatch.setattr(PruningModule, "_evaluate", spy)
    return per_module


def member_cfgs(make_cfg, tmp_path, name: str, *extra: str) -> list[DictConfig]:
    cfgs = []
    seeds = [i for i, _ in enumerate(MEMBERS)] if "seeds=each" in extra else [0] * len(MEMBERS)
    extra = tuple(e for e in extra if e != "seeds=each")
    for (strategy, k), seed in zip(MEMBERS, seeds, strict=True):
        cfg = make_cfg(f"strategy={strategy}", f"sparsity={k}", f"seed={seed}", *COMMON, *extra)
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
        # member i is seed i: its own init, batch order and dense-cache entry, in one stack
        ("seeds=each", "schedule=iterative", "schedule.epochs=0", "schedule.ramp_epochs=2"),
        ("seeds=each", "dense_cache=true", "schedule.finetune_epochs=2"),
    ],
    ids=["oneshot-finetune", "iterative", "from-dense-cache", "seeds-iterative", "seeds-cache"],
)
def test_stacked_members_equal_separate_runs(make_cfg, tmp_path, recorded, extra):
    separate = [run_job(c) for c in member_cfgs(make_cfg, tmp_path, "separate", *extra)]
    n_single = len(recorded)
    stacked = run_jobs(member_cfgs(make_cfg, tmp_path, "stacked", *extra))
    assert all(isinstance(r, dict) for r in stacked), stacked
    steps = list(recorded.values())
    # The separate runs' own fits of 50 steps (not the 25-step builds of dense-cache entries)
    single_losses = [torch.cat(s) for s in steps[:n_single] if len(s) == 50]
    assert len(single_losses) == len(MEMBERS)
    stacked_losses = torch.stack(steps[-1])  # (steps, M)

    assert stacked_losses.shape == (50, len(MEMBERS)), "50 steps, one loss per member"
    for m, losses in enumerate(single_losses):
        torch.testing.assert_close(stacked_losses[:, m], losses, atol=1e-5, rtol=0)
    for m, (strategy, k) in enumerate(MEMBERS):
        one, many = separate[m], stacked[m]
        assert many["strategy"] == strategy and many["sparsity"] == k
        assert many["stacked"]["members"] == len(MEMBERS) and many["stacked"]["index"] == m
        assert many["figures"] == one["figures"], "same masks, same sparsity figures"
        assert many["dense_cache"] == one["dense_cache"], "its own seed's dense entry"
        for split in ("train", "val", "test"):
            assert many[f"{split}_acc"] == pytest.approx(one[f"{split}_acc"], abs=2e-3)
        a = load_net(tmp_path / "separate" / f"{strategy}_{k}")
        b = load_net(tmp_path / "stacked" / f"{strategy}_{k}")
        for la, lb in zip(a.layers, b.layers, strict=True):
            assert torch.equal(la.mask, lb.mask), f"{strategy} k={k}: masks differ"
            torch.testing.assert_close(la.weight, lb.weight, atol=1e-4, rtol=0)
        rows = (tmp_path / "stacked" / f"{strategy}_{k}" / "metrics.csv").read_text()
        assert "train/acc" in rows.splitlines()[0] and "m0/" not in rows, "a separate run's log"


def test_jobs_are_stacked_only_when_they_differ_in_strategy_sparsity_and_seed(make_cfg):
    a = load(make_cfg("strategy=weight", "sparsity=0.5"))
    b = load(make_cfg("strategy=neuron", "sparsity=0.9"))
    c = load(make_cfg("strategy=weight", "sparsity=0.5", "seed=1"))
    d = load(make_cfg("strategy=weight", "sparsity=0.5", "optim.lr=0.01"))
    assert stack_key(a) == stack_key(b) == stack_key(c) != stack_key(d)
    assert group_jobs([a, b, c, d, a], max_members=64) == [[0, 1, 2, 4], [3]]
    assert group_jobs([a, b, a, b, a], max_members=2) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ConfigError, match="max_members must be ≥ 1"):
        group_jobs([a], max_members=0)


def test_a_stack_of_jobs_that_differ_in_more_is_refused_in_one_line(make_cfg, tmp_path):
    cfgs = member_cfgs(make_cfg, tmp_path, "mixed")
    with open_dict(cfgs[1]):
        cfgs[1].optim.lr = 0.01
    outcomes = run_jobs(cfgs)
    assert all(isinstance(o, ConfigError) for o in outcomes)
    assert "differ only in strategy (name, criterion, allocation, shuffle), sparsity and seed" in (
        str(outcomes[0])
    )
    assert (tmp_path / "mixed" / "weight_0.5" / "error.txt").is_file()


def test_member_loggers_route_prefixed_keys_to_their_member():
    class Sink(Logger):
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
    assert len(results) == 8, sorted(results)  # smoke: 2 × 2 × 2 seeds → one stack of 8
    assert {r["stacked"]["members"] for r in results.values()} == {8}
    assert {r["seed"] for r in results.values()} == {0, 1}
    assert "stacked run of 8 members" in (sweep / "stacked.log").read_text()
    before = {name: r["finished_at"] for name, r in results.items()}
    again = cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    after = {p.parent.name: json.loads(p.read_text())["finished_at"]
             for p in sweep.glob(f"*/{RESULT_FILE}")}  # fmt: skip
    assert after == before, "finished jobs are not trained again"
    assert report_main([str(sweep)], write=lambda _: None) == 0
    assert "8 of 8 jobs finished" in (sweep / "report" / "report.md").read_text()


class Crash(Exception):
    """Stands for a kill: raised from inside a stacked run at a chosen epoch."""


@pytest.mark.reliability
def test_a_stacked_run_killed_mid_training_resumes_from_its_last_checkpoint(
    make_cfg, tmp_path, monkeypatch
):
    from prunelab.callbacks import EpochSummary

    extra = ("dense_cache=false", "schedule.epochs=2", "schedule.finetune_epochs=1")
    straight = run_jobs(member_cfgs(make_cfg, tmp_path, "straight", *extra))
    real = EpochSummary.on_train_epoch_end

    def dies(self, trainer, pl_module):
        real(self, trainer, pl_module)
        if trainer.current_epoch == 2:
            raise Crash

    monkeypatch.setattr(EpochSummary, "on_train_epoch_end", dies)
    cfgs = member_cfgs(
        make_cfg,
        tmp_path,
        "killed",
        *extra,
        "checkpoint_every_n_epochs=1",
        "checkpoint_max_share=1",
    )
    assert all(isinstance(o, Crash) for o in run_jobs(cfgs))
    assert len(list((tmp_path / "killed").rglob("last.ckpt"))) == 1
    assert not list((tmp_path / "killed").rglob(RESULT_FILE))

    monkeypatch.setattr(EpochSummary, "on_train_epoch_end", real)
    resumed = run_jobs(cfgs)
    for a, b in zip(straight, resumed, strict=True):
        assert b["resumed_after_epoch"] == 2
        assert b["figures"] == a["figures"]
        # The resumed weights differ from the straight run's by ~1e-8 in float64, as they
        # did before figures were logged in float64 (float32 logging hid it): 1e-7 relative.
        for key in ("train_acc", "val_acc", "test_acc", "test_loss"):
            assert b[key] == pytest.approx(a[key], rel=1e-7), key
    rows = pd.read_csv(tmp_path / "killed" / "weight_0.5" / "metrics.csv")
    assert set(rows.dropna(subset=["val/acc"])["epoch"]) == {0, 1, 2}, "earlier rows kept"


def test_the_default_launcher_and_stacks_of_one_give_the_same_bits(tmp_path):
    """Each launcher with a dense cache of its own, so that each trains its dense model (with
    one cache the second would prune the first's model and show nothing of its training)."""
    common = ("-m", "experiment=smoke", "strategy=weight", "sparsity=0,0.9")
    launchers = {"default": (), "stacked": ("hydra/launcher=stacked",
                                            "hydra.launcher.max_members=1")}  # fmt: skip
    keys = ("train_acc", "val_acc", "test_acc", "test_loss", "figures")
    found: dict[str, list[dict]] = {}
    for name, launcher in launchers.items():
        proc = cli(*common, *launcher, f"hydra.sweep.dir={tmp_path / name}",
                   f"paths.cache_dir={tmp_path / name / 'cache'}")  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        said = proc.stdout + proc.stderr
        assert said.count("training the dense model") == 1, f"{name}: its own dense model"
        for p in (tmp_path / name).glob(f"*/{RESULT_FILE}"):
            r = json.loads(p.read_text())
            assert r["stacked"]["members"] == 1, name
            found.setdefault(p.parent.name, []).append({k: r[k] for k in keys})
    assert len(found) == 2 and all(len(v) == 2 and v[0] == v[1] for v in found.values())

"""The methods of the field through a real run: pruning at initialisation, data-driven
criteria at every point a schedule prunes (the final prune at test start included), scoring
batches of each member's own seed, and stacked = separate for every kind of criterion."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from omegaconf import open_dict

from prunelab.callbacks import PruningCallback
from prunelab.data import scoring_batches
from prunelab.nets import MaskedMLP
from prunelab.results import MODEL_FILE
from prunelab.run import run_job, run_jobs

SMALL = ("model.sizes=[784,64,32,10]", "data.limit=600", "data.batch_size=100",
         "strategy.score_batches=2", "strategy.score_batch_size=50")  # fmt: skip


def masks_of(run) -> list[torch.Tensor]:
    net = MaskedMLP([784, 64, 32, 10])
    net.load_state_dict(torch.load(run / MODEL_FILE, weights_only=True))
    return [layer.mask for layer in net.layers]


def test_pruning_at_init_prunes_before_the_first_step_and_trains_the_budget(
    make_cfg, tmp_path, monkeypatch
):
    steps = []  # the optimizer steps taken when each prune runs
    prune = PruningCallback.prune

    def spy(self, trainer, *args, **kwargs):
        steps.append(trainer.global_step)
        return prune(self, trainer, *args, **kwargs)

    monkeypatch.setattr(PruningCallback, "prune", spy)
    result = run_job(make_cfg("schedule=init", "schedule.epochs=2", "strategy=snip",
                              "sparsity=0.9", *SMALL))  # fmt: skip
    rows = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["sparsity/global"])
    assert rows["sparsity/global"].round(4).tolist() == [0.9, 0.9], "sparse from epoch 1 on"
    assert result["epochs"] == 2 and result["dense_cache"] is None, "no dense phase to share"
    assert sum(int((~m).sum()) for m in masks_of(tmp_path / "run")) == round(
        0.9 * (784 * 64 + 64 * 32)
    )
    assert steps == [0], "one prune, before the first step (a step later trains it dense)"


@pytest.mark.parametrize("strategy", ["snip", "grasp", "taylor_neuron", "activation_out_neuron"])
def test_a_data_criterion_prunes_at_test_start_inside_inference_mode(make_cfg, tmp_path, strategy):
    """One-shot without fine-tuning prunes when the test starts, where Lightning has turned
    on inference mode: the criteria that differentiate must still work there."""
    result = run_job(make_cfg(f"strategy={strategy}", "schedule.epochs=1", "sparsity=0.5",
                              *SMALL, f"paths.cache_dir={tmp_path / 'cache'}"))  # fmt: skip
    assert result["figures"]["sparsity/global"] == pytest.approx(0.5, abs=1e-3)
    for m in masks_of(tmp_path / "run")[:2]:  # not what all-equal scores give (ties by index)
        gone = (~m).all(dim=1) if "neuron" in strategy else (~m).flatten()
        assert not bool(gone[: int(gone.sum())].all()), f"{strategy}: pruned in index order"


def test_scoring_batches_of_a_member_are_those_of_its_separate_run():
    x = torch.arange(1000.0)[:, None].expand(1000, 3)
    y = torch.arange(1000)
    stacked = scoring_batches(x, y, [4, 7, 4], event=12, n_batches=3, batch_size=20)
    for i, seed in enumerate([4, 7, 4]):
        alone = scoring_batches(x, y, [seed], event=12, n_batches=3, batch_size=20)
        for (xs, ys), (xa, ya) in zip(stacked, alone, strict=True):
            assert torch.equal(xs[i], xa) and torch.equal(ys[i], ya)
    other_event = scoring_batches(x, y, [4], event=13, n_batches=3, batch_size=20)
    assert not torch.equal(other_event[0][1], scoring_batches(x, y, [4], 12, 3, 20)[0][1])


MEMBERS = [("snip", 0.9, 0), ("taylor_neuron", 0.5, 1), ("synflow", 0.8, 2),
           ("erk_weight", 0.9, 3), ("snip", 0.7, 4)]  # fmt: skip


@pytest.mark.parametrize(
    "extra",
    [("schedule=init", "schedule.epochs=1"),
     ("schedule.epochs=1", "schedule.finetune_epochs=1", "dense_cache=true")],
    ids=["at-init", "after-dense-cache"],
)  # fmt: skip
def test_stacked_members_equal_separate_runs_for_every_kind_of_criterion(make_cfg, tmp_path,
                                                                         extra):  # fmt: skip
    def cfgs(name: str) -> list:
        out = []
        for strategy, k, seed in MEMBERS:
            cfg = make_cfg(f"strategy={strategy}", f"sparsity={k}", f"seed={seed}", *SMALL, *extra)
            with open_dict(cfg):
                cfg.paths.output_dir = str(tmp_path / name / f"{strategy}_{k}")
            out.append(cfg)
        return out

    separate = [run_job(c) for c in cfgs("separate")]
    stacked = run_jobs(cfgs("stacked"))
    for (strategy, k, _), one, many in zip(MEMBERS, separate, stacked, strict=True):
        assert isinstance(many, dict), many
        assert many["stacked"]["members"] == len(MEMBERS)
        assert many["figures"] == one["figures"], f"{strategy} k={k}: other sparsity figures"
        a = masks_of(tmp_path / "separate" / f"{strategy}_{k}")
        b = masks_of(tmp_path / "stacked" / f"{strategy}_{k}")
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), f"{strategy} k={k}"
        assert many["test_acc"] == pytest.approx(one["test_acc"], abs=2e-3)

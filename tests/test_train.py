"""End to end: a default run on a data subset, its result.json, the CLI and its errors."""

from __future__ import annotations

import json
import math
import statistics

import pandas as pd
import pytest
import torch

from prunelab.config import CONF_DIR, check_argv, load
from prunelab.errors import ConfigError
from prunelab.nets import MaskedMLP
from prunelab.results import MODEL_FILE, RESULT_FILE
from prunelab.run import run_job

from .conftest import train_cli


def final_row(metrics: pd.DataFrame, key: str) -> float:
    values = metrics[key].dropna()
    assert len(values) == 1, f"{key} logged once"
    return float(values.iloc[0])


def test_default_run_on_a_subset_writes_a_result_that_matches_the_csv_log(make_cfg, tmp_path):
    cfg = make_cfg("data.limit=1500", "strategy=neuron", "sparsity=0.5")
    result = run_job(cfg)
    run = tmp_path / "run"
    on_disk = json.loads((run / RESULT_FILE).read_text())
    assert on_disk == result
    assert on_disk["status"] == "ok" and on_disk["strategy"] == "neuron"
    assert on_disk["epochs"] == 5 and on_disk["sparsity"] == 0.5

    metrics = pd.read_csv(run / "metrics.csv")
    for split in ("train", "val", "test"):
        for m in ("acc", "loss"):
            logged = final_row(metrics, f"final/{split}/{m}")
            assert on_disk[f"{split}_{m}"] == pytest.approx(logged)
    for key, value in on_disk["figures"].items():
        assert value == pytest.approx(final_row(metrics, f"final/{key}"), rel=1e-6)
    per_epoch = metrics.dropna(subset=["test/acc"])
    assert per_epoch["epoch"].tolist() == [0, 1, 2, 3, 4], "test accuracy logged every epoch"
    assert per_epoch["test/acc"].iloc[-1] > 0.7, "five dense epochs on 1500 images learn"
    assert on_disk["test_acc"] > 0.2, "half the units gone, unrecovered: still above chance"

    fig = on_disk["figures"]
    for layer in range(1, 5):
        assert fig[f"sparsity/layer{layer}"] == 0.5
    assert fig["sparsity/layer5"] == 0.0
    assert fig["sparsity/effective"] > fig["sparsity/global"] == 0.5

    state = torch.load(run / MODEL_FILE, weights_only=True)
    net = MaskedMLP(cfg.model.sizes)
    net.load_state_dict(state)
    assert int((~net.layers[0].mask).all(dim=1).sum()) == 500
    assert on_disk["git_sha"] and on_disk["config"]["sparsity"] == 0.5
    assert on_disk["inference"] is None, "a data.limit run is a quick look: no timing"


def test_inference_is_timed_at_the_end_of_a_real_run_not_of_a_quick_look(make_cfg):
    """What the inference timing records; how much faster the export is, is measured by
    benchmarks/bench_sparse.py, not asserted on a machine whose load a test cannot know."""
    from prunelab.config import strategy_method
    from prunelab.finish import measure_inference

    net = MaskedMLP([784, 1000, 1000, 500, 200, 10])
    net.prune(strategy_method("neuron"), 0.5)
    inference = measure_inference(load(make_cfg()), net)
    assert inference is not None and inference["batch_size"] == 64 and inference["dense_ms"] > 0
    assert math.isfinite(inference["speedup"]) and inference["speedup"] > 0
    assert inference["auto_kinds"] == "dense/dense/dense/dense/dense", "units: compaction"
    assert measure_inference(load(make_cfg("data.limit=1000")), net) is None
    assert measure_inference(load(make_cfg("inference_batch_size=null")), net) is None


def test_finetuning_keeps_pruned_weights_at_zero_and_logs_pruned_epochs(make_cfg, tmp_path):
    cfg = make_cfg(
        "data.limit=600", "sparsity=0.9", "schedule.epochs=1", "schedule.finetune_epochs=2"
    )
    result = run_job(cfg)
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    sparsity_by_epoch = metrics.dropna(subset=["sparsity/global"])
    assert sparsity_by_epoch["sparsity/global"].round(4).tolist() == [0.0, 0.9, 0.9]
    net = MaskedMLP(cfg.model.sizes)
    net.load_state_dict(torch.load(tmp_path / "run" / MODEL_FILE, weights_only=True))
    for layer in net.layers:
        assert int((layer.weight[~layer.mask] != 0).sum()) == 0
    assert result["finetune_epochs"] == 2


def test_a_finished_run_is_returned_without_training_again(make_cfg, tmp_path):
    cfg = make_cfg("data.limit=300", "schedule.epochs=1")
    first = run_job(cfg)
    before = (tmp_path / "run" / "metrics.csv").stat().st_mtime_ns
    second = run_job(cfg)
    assert second == first
    assert (tmp_path / "run" / "metrics.csv").stat().st_mtime_ns == before


def test_help_is_prunelabs_own_text():
    proc = train_cli("--help")
    assert proc.returncode == 0
    out = proc.stdout
    assert "prunelab.train" in out and "strategy: " in out
    schedules = "gradual, imp, init, iterative, lottery, oneshot, rigl, sensitivity, set"
    assert f"schedule: {schedules}" in out
    assert "strategy.criterion: activation, activation_out, apoz, gradient, grasp, lamp" in out
    assert out.count("python -m prunelab.train") >= 3, "three examples"
    assert "Powered by Hydra" not in out


def test_group_choices_are_checked_item_by_item_in_sweeps():
    check_argv(["strategy=weight,neuron", "sparsity=0.1", "-m", "hydra.run.dir=x"])
    with pytest.raises(ConfigError, match="unknown strategy 'nueron'"):
        check_argv(["strategy=weight,nueron"])


def test_result_json_never_holds_nan(make_cfg, tmp_path):
    result = run_job(make_cfg("data.limit=200", "schedule.epochs=1", "save_model=false"))
    floats = [v for v in result.values() if isinstance(v, float)]
    floats += list(result["figures"].values())
    assert all(math.isfinite(v) for v in floats)
    assert not (tmp_path / "run" / MODEL_FILE).exists()


@pytest.mark.parametrize("finetune", [0, 1])
def test_a_run_from_the_dense_cache_equals_one_trained_straight_through(
    make_cfg, tmp_path, finetune
):
    common = ["data.limit=600", "schedule.epochs=2", f"schedule.finetune_epochs={finetune}"]
    cached = run_job(make_cfg(*common, "sparsity=0.7"))
    assert cached["dense_cache"] is not None
    direct = run_job(
        make_cfg(
            *common, "sparsity=0.7", "dense_cache=false", f"paths.output_dir={tmp_path / 'direct'}"
        )
    )
    assert direct["dense_cache"] is None
    for key in ("train_acc", "val_acc", "test_acc", "test_loss"):
        assert cached[key] == direct[key]
    a = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["test/acc"])
    b = pd.read_csv(tmp_path / "direct" / "metrics.csv").dropna(subset=["test/acc"])
    assert a["epoch"].tolist() == b["epoch"].tolist() == list(range(2 + finetune))
    assert a["test/acc"].tolist() == b["test/acc"].tolist()


def test_runs_that_differ_only_in_strategy_and_k_share_one_dense_model(make_cfg, tmp_path):
    for i, (strategy, k) in enumerate([("weight", 0.5), ("neuron", 0.9), ("weight", 0.0)]):
        run_job(
            make_cfg(
                "data.limit=300",
                "schedule.epochs=1",
                f"strategy={strategy}",
                f"sparsity={k}",
                f"paths.output_dir={tmp_path / str(i)}",
            )
        )
    entries = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert len(entries) == 1
    run_job(
        make_cfg(
            "data.limit=300",
            "schedule.epochs=1",
            "seed=1",
            f"paths.output_dir={tmp_path / 'seed1'}",
        )
    )
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 2


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_preset_composes_into_a_valid_config(make_cfg, preset):
    assert load(make_cfg(f"experiment={preset}")).schedule.total_epochs > 0


def test_bf16_autocast_and_tf32_switches_reach_the_run(make_cfg, monkeypatch):
    """bf16-mixed runs on the CPU too: the training steps' logits are bfloat16, and the
    result's numerics say so; TF32 only changes GPU matmuls but is set either way."""
    from prunelab import module

    dtypes: list[torch.dtype] = []
    real = module.member_losses

    def spy(logits, y):
        dtypes.append(logits.dtype)
        return real(logits, y)

    monkeypatch.setattr(module, "member_losses", spy)
    cfg = make_cfg("trainer.precision=bf16-mixed", "float32_matmul_precision=high",
                   "data.limit=2000", "data.batch_size=128", "schedule.epochs=1",
                   "sparsity=0.5")  # fmt: skip
    try:
        result = run_job(cfg)
    finally:
        torch.set_float32_matmul_precision("highest")
    assert dtypes and set(dtypes) == {torch.bfloat16}, "every step under bf16 autocast"
    numerics = result["numerics"]
    assert numerics["trainer_precision"] == "bf16-mixed"
    assert numerics["float32_matmul_precision"] == "high", "read back from torch in the run"
    assert result["test_acc"] > 0.5


def test_the_challenge_preset_is_sixty_one_shot_runs_of_the_default_dense_phase(make_cfg):
    """What the README says ``make challenge`` runs: weight and unit pruning × the seed's ten
    k × seeds 0-2, one-shot with no fine-tuning after 10 dense epochs of Adam at a constant
    2e-3, the dense model the mean of its last 6 epochs' weights."""
    from omegaconf import OmegaConf

    job = load(make_cfg("experiment=challenge"))
    assert job.schedule.name == "oneshot" and job.schedule.epochs == 10
    assert job.schedule.finetune_epochs == 0
    assert (job.optim.name, job.optim.lr, job.optim.lr_schedule) == ("adam", 2e-3, "constant")
    assert job.optim.average_epochs(job.schedule.epochs) == 6
    params = OmegaConf.load(CONF_DIR / "experiment" / "challenge.yaml").hydra.sweeper.params
    grid = {k: str(v).split(",") for k, v in params.items()}
    assert grid["strategy"] == ["weight", "neuron"] and grid["seed"] == ["0", "1", "2"]
    assert [float(k) for k in grid["sparsity"]] == [
        0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99
    ]  # fmt: skip


def test_result_json_records_its_times_and_numeric_environment(make_cfg):
    """The README's list of what result.json holds about how a run went: every epoch's
    seconds and their median without the first, fit and wall time, the checkpoint saves."""
    result = run_job(make_cfg("data.limit=300", "model.sizes=[784,32,10]", "schedule.epochs=3",
                              "schedule.finetune_epochs=1", "sparsity=0.5", "dense_cache=false",
                              "checkpoint_every_n_epochs=1", "checkpoint_max_share=1",
                              "inference_batch_size=null"))  # fmt: skip
    times = result["epoch_times_s"]
    assert len(times) == 4 and all(t > 0 for t in times)
    assert result["epoch_time_s"] == statistics.median(times[1:])
    assert 0 < result["fit_time_s"] <= result["wall_time_s"]
    assert result["checkpoint_time_s"] > 0, "three saves (none after the last epoch)"
    env = result["numerics"]
    assert env["deterministic_algorithms"] is True and env["cuda_version"] is None
    assert env["device_name"] and env["interop_threads"] == torch.get_num_interop_threads()


def test_a_sweep_below_here_is_named_as_typed_and_quoted_for_the_shell(tmp_path, monkeypatch):
    from prunelab.train import sweep_end

    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "outputs" / "my sweep"
    (sweep / "job").mkdir(parents=True)
    (sweep / "job" / RESULT_FILE).write_text("{}")
    assert sweep_end(sweep) == (
        "sweep folder outputs/my sweep: 1 finished job(s); report them with: "
        "python -m prunelab.report 'outputs/my sweep'"
    )


@pytest.mark.parametrize(
    ("strategy", "schedule", "k", "levels", "name"),
    [("weight", "oneshot", 0.9, None, "weight_k0.9"),
     ("snip", "oneshot", 0.95, None, "snip_k0.95"),
     ("snip", "init", 0.95, None, "snip-init_k0.95"),
     ("neuron", "gradual", 0.5, None, "neuron-gradual_k0.5"),
     ("random_weight", "rigl", 0.98, None, "rigl_k0.98"),
     ("random_weight", "set", 0, None, "set_k0"),
     ("weight", "imp", 0.2, 5, "imp_L5"),
     ("global_weight", "imp", 0.2, 3, "imp-global_weight_L3"),
     ("weight", "rigl", 0.9, None, "rigl-weight_k0.9")],
)  # fmt: skip
def test_a_run_folder_says_what_ran(strategy, schedule, k, levels, name):
    from prunelab.config.tree import run_name

    assert run_name(strategy, schedule, k, levels) == name


def test_a_single_run_lands_in_a_folder_named_after_its_method_and_schedule(tmp_path):
    proc = train_cli("schedule=init", "strategy=snip", "sparsity=0.95", "schedule.epochs=1",
                     "data.limit=300", "model.sizes=[784,32,10]", "inference_batch_size=null",
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    [run] = (tmp_path / "outputs" / "runs").iterdir()
    assert run.name.endswith("_snip-init_k0.95") and (run / RESULT_FILE).is_file(), run.name

"""One typed schema for every setting (``config/schema.py``), checked in one place with one
error type: every bad value, unknown key and contradiction is one line, before any work."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from prunelab.config import (
    CONF_DIR,
    Config,
    check_argv,
    check_environment,
    check_max_members,
    check_stack,
    load,
)
from prunelab.config.schema import schema_fields
from prunelab.errors import ConfigError
from prunelab.schedules import SCHEDULES

from .conftest import ROOT, fake_slurm_path, study_presets, study_searchpath

# Each as typed on the command line, and the start of the one line that refuses it.
BAD = [
    ("data.limit=0", "data.limit must be a whole number ≥ 1, got 0"),
    ("data.batch_size=0", "data.batch_size must be a whole number ≥ 1, got 0"),
    ("data.eval_batch_size=1.5", "data.eval_batch_size must be a whole number ≥ 1, got 1.5"),
    ("data.std=0", "data.std must be positive, got 0"),
    ("data.mean=abc", "data.mean must be a number, got 'abc'"),
    ("strategy.prune_output=maybe", "strategy.prune_output must be true or false, got 'maybe'"),
    ("save_model=2", "save_model must be true or false, got 2"),
    ("dense_cache=sometimes", "dense_cache must be true or false, got 'sometimes'"),
    ("finetune_guard=1", "finetune_guard must be true or false, got 1"),
    ("finetune_min_correct=-1", "finetune_min_correct must be a whole number ≥ 0, got -1"),
    ("optim.lr=0", "optim.lr must be positive, got 0"),
    ("optim.finetune_lr=-1", "optim.finetune_lr must be positive, got -1"),
    ("optim.weight_decay=-0.1", "optim.weight_decay must be ≥ 0, got -0.1"),
    ("optim.name=lbfgs", "unknown optim.name 'lbfgs'; choose one of: adam, adamw, sgd"),
    ("optim.lr_schedule=step", "unknown optim.lr_schedule 'step'; choose one of: cosine, constant"),
    ("model.sizes=[784,0,10]", "model.sizes must be a list of whole numbers ≥ 1, got [784, 0, 10]"),
    ("model.sizes=[784]", "model.sizes must be ≥ 2 positive integers, got [784]"),
    ("checkpoint_every_n_epochs=-1", "checkpoint_every_n_epochs must be a whole number ≥ 0"),
    ("checkpoint_max_share=0", "checkpoint_max_share must be in (0, 1], got 0"),
    ("inference_batch_size=0", "inference_batch_size must be a whole number ≥ 1, got 0"),
    (
        "schedule=gradual schedule.prune_every_epochs=0",
        "schedule.prune_every_epochs must be positive",
    ),
    ("strategy=magnitude", "unknown strategy 'magnitude'; choose one of:"),
    ("strategy.name=neuron", "strategy.name=neuron names the preset whose criterion is unit_l2"),
    ("strategy.criterion=l1", "unknown strategy.criterion 'l1'; choose one of:"),
    ("strategy.allocation=even", "unknown strategy.allocation 'even'; choose one of:"),
    ("strategy=neuron strategy.allocation=erk", "strategy.allocation=erk spreads weights"),
    ("schedule.name=later", "unknown schedule 'later'; choose one of:"),
    ("seed=-1", "seed must be a whole number ≥ 0, got -1"),
    ("schedule.epochs=-1", "schedule.epochs must be a whole number ≥ 0, got -1"),
    ("schedule.epochs=1.5", "schedule.epochs must be a whole number ≥ 0, got 1.5"),
    ("sparsity=nan", "sparsity must be in [0, 1), got nan"),
    (
        "progress_bar=sometimes",
        "unknown progress_bar 'sometimes'; choose one of: auto, true, false",
    ),
    ("on_mismatch=ignore", "unknown on_mismatch 'ignore'; choose one of: stop, rerun"),
    ("trainer.precision=8-bit", "unknown trainer.precision '8-bit'; choose one of:"),
    (
        "+trainer.max_epochs=3",
        "unknown key 'trainer.max_epochs': TrainerConfig has no such setting",
    ),
    ("+foo=1", "unknown key 'foo': Config has no such setting"),
    ("schedule=lottery schedule.name=gradual", "schedule.name=gradual does not match the chosen"),
    ("sparsity=0.1,0.5", "sparsity=0.1,0.5 lists several values: add -m (--multirun)"),
    # mistakes a new user made (issue of 2026-12-06), each with the fix in its one line
    ("model.sizes=784,300,100,10",
     "model.sizes takes a list: write it in brackets, model.sizes=[784,300,100,10]"),
    ("-m model.sizes=784,300,100,10",
     "model.sizes takes a list: write it in brackets, model.sizes=[784,300,100,10]"),
    ("model.sizes=[784,300,100]", "model.sizes [784, 300, 100] does not fit mnist (784 inputs, "
     "10 classes); use model.sizes=[784,300,100,10]"),
    ("data=fashion_mnist model.sizes=[784,10,100]", "model.sizes [784, 10, 100] does not fit "
     "fashion_mnist (784 inputs, 10 classes); use model.sizes=[784,10,100,10]"),
    ("epochs=3", "unknown key 'epochs': Config has no such setting; did you mean schedule.epochs?"),
    ("lr=0.01", "unknown key 'lr': Config has no such setting; did you mean optim.lr?"),
    ("optim.lrate=0.1", "unknown key 'optim.lrate': OptimConfig has no such setting; did you "
     "mean optim.lr"),
    ("schedule.rewind_epoch=1", "unknown key 'schedule.rewind_epoch': OneshotSchedule has no "
     "such setting; only schedule=imp and schedule=lottery have it (e.g. schedule=imp "
     "schedule.rewind_epoch=…)"),
    ("strategy=", "strategy= names no choice; choose one of: activation_neuron, "),
    ("schedule=", "schedule= names no choice; choose one of: gradual, imp, init, iterative, "
     "lottery, oneshot, rigl, sensitivity, set"),
]  # fmt: skip


@pytest.mark.parametrize(("override", "message"), BAD, ids=[b[0] for b in BAD])
def test_every_bad_value_is_one_config_error_line_before_hydra_starts(tmp_path, override, message):
    with pytest.raises(ConfigError) as e:
        check_argv([*override.split(), f"hydra.run.dir={tmp_path / 'run'}"])
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert not (tmp_path / "run").exists(), "nothing written"


def test_what_the_schema_allows_passes_including_documented_nulls(tmp_path):
    check_argv([f"hydra.run.dir={tmp_path}", "data.eval_train_limit=null", "data.limit=300",
                "inference_batch_size=null", "progress_bar=true", "strategy.prune_output=true",
                "schedule=gradual", "schedule.prune_every_epochs=1", "optim.lr=2e-3"])  # fmt: skip


def test_a_sweep_with_one_bad_job_is_refused_before_any_job_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"sparsity must be in \[0, 1\), got 1.5"):
        check_argv(["-m", "experiment=smoke", "sparsity=0,0.5,1.5", f"hydra.sweep.dir={tmp_path}"])
    assert not list(tmp_path.iterdir())


def test_the_jobs_checked_before_hydra_are_the_jobs_hydra_composes(make_cfg, tmp_path):
    """The command-line check composes once per choice of groups and applies values itself;
    what it builds must be exactly what Hydra builds for the job."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from prunelab.config import argv

    built = []
    real = argv.check_job_config
    argv.check_job_config = lambda cfg, *a: built.append(cfg) or real(cfg, *a)
    try:
        lines = ["schedule=lottery", "schedule.epochs=3", "data.limit=500", "seed=4",
                 "model.sizes=[784,30,10]", "strategy=random_weight"]  # fmt: skip
        argv.check_jobs(OverridesParser.create().parse_overrides(lines), multirun=False)
    finally:
        argv.check_job_config = real
    composed = make_cfg(*lines)
    ours = OmegaConf.to_container(built[0], resolve=False)
    hydras = OmegaConf.to_container(composed, resolve=False)
    for side in (ours, hydras):
        side.pop("paths")  # the fixture's own folders
    assert ours == hydras


def test_the_default_and_every_preset_pass(make_cfg):
    """prunelab's own presets, and every study's through Hydra's search path as its run.sh
    adds it."""
    load(make_cfg())
    presets = {p.stem: None for p in (CONF_DIR / "experiment").glob("*.yaml")}
    presets.update(study_presets())
    for preset, study in sorted(presets.items()):
        search = [study_searchpath(study)] if study else []
        job = load(make_cfg(f"experiment={preset}", *search))
        assert job.schedule.total_epochs > 0


def test_every_setting_has_one_default_and_the_yaml_repeats_none_of_them():
    """Defaults live in the schema only: a YAML value equal to the schema's default would be
    a second place for it (presets and group choices set only what they change)."""
    defaults = {f.name: f for f in dataclasses.fields(Config)}
    config_yaml = OmegaConf.load(CONF_DIR / "config.yaml")
    assert set(config_yaml) == {"defaults", "hydra"}, "config.yaml sets no values of its own"
    for group, cls in (("data", "DataConfig"), ("trainer", "TrainerConfig"),
                       ("strategy", "StrategyConfig")):  # fmt: skip
        fields = schema_fields(type(defaults[group].default_factory()))
        for path in (CONF_DIR / group).glob("*.yaml"):
            for key, value in OmegaConf.load(path).items():
                f = fields[key]
                assert f.default is dataclasses.MISSING or value != f.default, (path, key, cls)
    for name, cls in SCHEDULES.items():
        yaml = OmegaConf.load(CONF_DIR / "schedule" / f"{name}.yaml")
        assert set(yaml) == {"defaults"}, f"schedule/{name}.yaml: its defaults are {cls.__name__}'s"


def test_every_schema_field_says_what_it_does():
    def fields(cls):
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(f.type) or f.name in ("data", "model", "strategy",
                                                               "trainer", "logger", "optim",
                                                               "paths", "schedule"):  # fmt: skip
                continue
            yield cls, f

    from prunelab.config import schema

    classes = [c for c in vars(schema).values() if dataclasses.is_dataclass(c)]
    for cls, f in (pair for c in classes for pair in fields(c)):
        assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help text"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_a_gpu_trainer_without_cuda_is_refused_before_any_work(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="trainer=gpu but no CUDA device is visible"):
        check_environment(load(make_cfg("trainer=gpu")))
    with pytest.raises(ConfigError, match="trainer=gpu but no CUDA device is visible"):
        check_argv(["trainer=gpu", f"hydra.run.dir={tmp_path / 'r'}"])


def test_a_cluster_sweep_is_not_refused_for_the_login_node_lacking_a_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_slurm_path(tmp_path / "bin"))  # a cluster with GPUs
    check_argv(["-m", "experiment=smoke", "trainer=gpu", "hydra/launcher=slurm",
                "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path}"])  # fmt: skip


def test_jobs_that_differ_in_more_than_strategy_k_and_seed_cannot_share_a_stack(make_cfg):
    check_stack([load(make_cfg("sparsity=0.5")),
                 load(make_cfg("strategy=neuron", "sparsity=0.9", "seed=1")),
                 load(make_cfg("strategy=erk_weight", "strategy.shuffle=true"))])  # fmt: skip
    with pytest.raises(ConfigError, match=r"differ only in strategy \(name, criterion, alloc"):
        check_stack([load(make_cfg()), load(make_cfg("optim.lr=0.01"))])
    with pytest.raises(ConfigError, match=r"differ only in strategy \(name, criterion, alloc"):
        check_stack([load(make_cfg()), load(make_cfg("strategy.score_batches=3"))])
    with pytest.raises(ConfigError, match=r"differ only in strategy \(name, criterion, alloc"):
        check_stack([load(make_cfg()), load(make_cfg("strategy=neuron",
                                                      "strategy.prune_output=true"))])  # fmt: skip
    with pytest.raises(ConfigError, match="max_members must be ≥ 1"):
        check_max_members(0)


def raised_names(path: Path) -> set[str]:
    """Names of the exception classes ``path`` raises by name (``raise X(...)``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            names.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    return names


def test_config_errors_are_raised_in_the_config_package_only():
    src = ROOT / "src"
    raisers = sorted(
        str(p.relative_to(src)) for p in src.rglob("*.py") if "ConfigError" in raised_names(p)
    )
    assert raisers and all(r.startswith("prunelab/config/") for r in raisers), raisers


# Where a raw Hydra config may still be read: the config package that types it, the CLI and
# the launchers that receive it from Hydra, where they start every job (workflows.py, which
# hands it to the orchestrator's one conversion), Hydra's own config in the GPU pool, and the
# dense cache's.
RAW_CONFIG_READERS = {
    "prunelab/config/argv.py", "prunelab/config/checks.py", "prunelab/config/values.py",
    "prunelab/train.py",
    "prunelab/run.py", "prunelab/workflows.py", "prunelab/gpus.py",
    "hydra_plugins/prunelab_launcher/jobs.py",
    "hydra_plugins/prunelab_launcher/stacked_launcher.py",
    "hydra_plugins/prunelab_launcher/slurm_launcher.py",
}  # fmt: skip


# A name that holds a config: ``cfg``, ``job_cfg``, ``self.config``, ``conf`` (not ``HydraConfig``)
CONFIG_NAME = re.compile(r"(^|[._])(cfg|config|conf)$")


def test_no_module_below_the_entry_points_reads_a_raw_config():
    """A component gets typed settings (``config.Config``) and cannot fall back to a default
    of its own: no ``DictConfig`` outside the modules that receive Hydra's, and no
    ``.get(key, default)`` on a config anywhere, whether it is called cfg or config."""
    src = ROOT / "src"
    for path in src.rglob("*.py"):
        name = str(path.relative_to(src))
        text = path.read_text()
        if name not in RAW_CONFIG_READERS:
            assert "DictConfig" not in text, f"{name} reads a raw config"
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and (
                    "cfg" in (owner := ast.unparse(node.func.value).lower())
                    or CONFIG_NAME.search(owner)
                )
            ):
                raise AssertionError(f"{name}: {ast.unparse(node)} falls back to a default")

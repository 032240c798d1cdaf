"""Validation lives in one place (``config.py``) and speaks one error type (ConfigError)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from prunelab.config import check, check_max_members, check_stack
from prunelab.errors import ConfigError

from .conftest import ROOT

BAD = [
    ("data.limit=0", "data.limit must be a whole number ≥ 1, got 0"),
    ("data.batch_size=0", "data.batch_size must be a whole number ≥ 1, got 0"),
    ("data.eval_batch_size=1.5", "data.eval_batch_size must be a whole number ≥ 1, got 1.5"),
    ("optim.lr=0", "optim.lr must be positive, got 0"),
    ("optim.finetune_lr_scale=-1", "optim.finetune_lr_scale must be positive, got -1"),
    ("optim.weight_decay=-0.1", "optim.weight_decay must be ≥ 0, got -0.1"),
    ("optim.name=lbfgs", "unknown optim.name 'lbfgs'; choose adam, adamw or sgd"),
    ("model.sizes=[784]", "model.sizes must be ≥ 2 positive integers, got [784]"),
    ("model.sizes=[784,0,10]", "model.sizes must be ≥ 2 positive integers, got [784, 0, 10]"),
    ("checkpoint_every_n_epochs=-1", "checkpoint_every_n_epochs must be a whole number ≥ 0"),
    ("checkpoint_max_share=0", "checkpoint_max_share must be in (0, 1]"),
    ("inference_batch_size=0", "inference_batch_size must be a whole number ≥ 1, got 0"),
    ("schedule=gradual schedule.prune_every_steps=0", "schedule.prune_every_steps must be"),
    ("strategy.name=magnitude", "unknown strategy 'magnitude'; choose one of:"),
]


@pytest.mark.parametrize(("override", "message"), BAD)
def test_every_bad_value_is_one_config_error_line(make_cfg, override, message):
    with pytest.raises(ConfigError) as e:
        check(make_cfg(*override.split()))
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_a_gpu_trainer_without_cuda_is_refused_before_any_work(make_cfg):
    with pytest.raises(ConfigError, match="trainer=gpu but no CUDA device is visible"):
        check(make_cfg("trainer=gpu"))


def test_the_default_and_every_preset_pass(make_cfg):
    check(make_cfg())
    for preset in ("challenge", "smoke", "seed_full", "seed_iterative"):
        check(make_cfg(f"experiment={preset}"))


def test_jobs_that_differ_in_more_than_strategy_k_and_seed_cannot_share_a_stack(make_cfg):
    check_stack([make_cfg("sparsity=0.5"), make_cfg("strategy=neuron", "sparsity=0.9", "seed=1")])
    with pytest.raises(ConfigError, match="differ only in strategy name, sparsity and seed"):
        check_stack([make_cfg(), make_cfg("optim.lr=0.01")])
    with pytest.raises(ConfigError, match="differ only in strategy name, sparsity and seed"):
        check_stack([make_cfg(), make_cfg("strategy=neuron", "strategy.prune_output=true")])
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


def test_config_errors_are_raised_in_config_py_only():
    src = ROOT / "src"
    raisers = sorted(
        str(p.relative_to(src)) for p in src.rglob("*.py") if "ConfigError" in raised_names(p)
    )
    assert raisers == ["prunelab/config.py"]

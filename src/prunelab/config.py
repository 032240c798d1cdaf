"""Every check of a job's config, in one place, with one error type, and the values derived
from a config.

A bad value is refused here, in one line that says what was wrong and how to fix it, before
any data is loaded or any epoch is spent; the layers below (nets, pruning, schedules, the
module, the callbacks) trust what they are given. ``train.py`` calls ``check_argv`` on the
command line; ``run.py`` calls ``check_stack`` on the jobs it is about to train.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from prunelab.errors import ConfigError
from prunelab.nets import prunable_layers
from prunelab.pruning import STRATEGIES
from prunelab.results import config_hash
from prunelab.schedules import SCHEDULES, lr_horizon


def conf_dir() -> Path:
    """The Hydra config tree: ``prunelab/conf`` inside an installed wheel, else the
    repository's top-level ``conf/`` (a checkout, an editable install, ``PYTHONPATH=src``)."""
    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    return packaged if (packaged / "config.yaml").is_file() else here.parents[1] / "conf"


CONF_DIR = conf_dir()
# Keys in which the members of one stack may differ (each has its own folder and logger, and
# each seed its own init, batch order and dense-cache entry); everything else (schedule, data,
# optimiser, trainer, strategy.prune_output) must be equal.
MEMBER_KEYS = ("strategy.name", "sparsity", "seed", "paths", "logger", "save_model")
MATMUL_PRECISIONS = ("highest", "high", "medium")


def check(cfg: DictConfig) -> None:
    """Refuse a bad job config (see the module docstring)."""
    check_strategy(cfg.strategy.name)
    check_sparsity(cfg.sparsity)
    check_model_sizes(list(cfg.model.sizes))
    check_layer_sparsity(cfg)
    if not isinstance(cfg.get("finetune_guard", False), bool):
        raise ConfigError(
            f"finetune_guard must be true or false, got {cfg.finetune_guard!r} "
            "(e.g. finetune_guard=false to keep every fine-tuned model as it ends)"
        )
    gain = cfg.get("finetune_min_gain", 0.0)
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not 0 <= gain < 1:
        raise ConfigError(
            f"finetune_min_gain must be in [0, 1), got {gain!r} (e.g. finetune_min_gain=0.001: "
            "keep a fine-tune only if it adds 0.1 points of validation accuracy)"
        )
    if cfg.get("progress_bar", "auto") not in ("auto", True, False):
        raise ConfigError(
            f"progress_bar must be auto, true or false, got {cfg.progress_bar!r} "
            "(e.g. progress_bar=false)"
        )
    check_schedule(cfg)
    check_optim(cfg.optim)
    if cfg.optim.get("average_epochs", 0) > cfg.schedule.epochs:
        raise ConfigError(
            f"optim.average_epochs={cfg.optim.average_epochs} exceeds the {cfg.schedule.epochs} "
            "dense epochs it averages over (schedule.epochs); use at most that many"
        )
    if cfg.data.limit is not None:
        whole_number("data.limit", cfg.data.limit, 1, 2000)
    for key in ("batch_size", "eval_batch_size", "eval_train_limit"):
        whole_number(f"data.{key}", cfg.data[key], 1, 512)
    whole_number("checkpoint_every_n_epochs", cfg.checkpoint_every_n_epochs, 0, 5)
    share = cfg.get("checkpoint_max_share", 1.0)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ConfigError(
            f"checkpoint_max_share must be in (0, 1], got {share!r} (e.g. "
            "checkpoint_max_share=0.05: saving takes at most 5 % of the training time)"
        )
    if cfg.inference_batch_size is not None:
        whole_number("inference_batch_size", cfg.inference_batch_size, 1, 64)
    precision = cfg.get("float32_matmul_precision", "highest")
    if precision not in MATMUL_PRECISIONS:
        raise ConfigError(
            f"unknown float32_matmul_precision {precision!r}; choose highest, high (TF32) or medium"
        )
    if cfg.trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError("trainer=gpu but no CUDA device is visible; use trainer=cpu")


def whole_number(key: str, value: Any, low: int, example: int) -> int:
    """``value`` as an int ≥ ``low``, or a one-line error naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(
            f"{key} must be a whole number ≥ {low}, got {value!r} (e.g. {key}={example})"
        )
    return value


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        known = ", ".join(sorted(STRATEGIES))
        raise ConfigError(
            f"unknown strategy {name!r}; choose one of: {known} (e.g. strategy=weight)"
        )
    return name


def check_sparsity(k: object) -> float:
    """``k`` as a float in [0, 1).

    k = 1 would remove every unit and leave a constant network, so it is refused rather
    than silently producing a 10 % accuracy row.
    """
    if isinstance(k, bool) or not isinstance(k, (int, float)):
        raise ConfigError(f"sparsity must be a number in [0, 1), got {k!r} (e.g. sparsity=0.9)")
    k = float(k)
    if not 0.0 <= k < 1.0:
        raise ConfigError(f"sparsity must be in [0, 1), got {k} (e.g. sparsity=0.9 for 90 %)")
    return k


def check_layer_sparsity(cfg: DictConfig) -> None:
    """``strategy.layer_sparsity``: null, or one k in [0, 1) per pruned layer; ``sparsity``
    then labels the run and must be 0 (the dense reference) or the profile's global fraction,
    so that the report's k column stays true."""
    profile = cfg.strategy.get("layer_sparsity")
    if profile is None:
        return
    sizes = list(cfg.model.sizes)
    n_weights = [a * b for a, b in itertools.pairwise(sizes)]
    prunable = prunable_layers(len(n_weights), bool(cfg.strategy.prune_output))
    pruned = [n for n, p in zip(n_weights, prunable, strict=True) if p]
    if isinstance(profile, str) or not hasattr(profile, "__len__") or len(profile) != len(pruned):
        where = "hidden and output" if cfg.strategy.prune_output else "hidden"
        example = ",".join(["0.9"] * len(pruned))
        raise ConfigError(
            f"strategy.layer_sparsity needs one value per pruned layer ({len(pruned)} {where} "
            f"layers), got {profile!r} (e.g. strategy.layer_sparsity=[{example}]; the output "
            "layer counts only with strategy.prune_output=true)"
        )
    for k in profile:
        check_sparsity(k)
    if cfg.strategy.name == "global_weight":
        raise ConfigError(
            "strategy.layer_sparsity does not apply to global_weight (its one threshold sets "
            "each layer's sparsity); use strategy=weight or set strategy.layer_sparsity=null"
        )
    overall = sum(k * n for k, n in zip(profile, pruned, strict=True)) / sum(pruned)
    if cfg.sparsity != 0 and abs(cfg.sparsity - overall) > 0.005:
        raise ConfigError(
            f"sparsity={cfg.sparsity} does not match strategy.layer_sparsity, which removes "
            f"{overall:.4f} of the pruned weights; set sparsity={overall:.4g} (or 0 for the "
            "dense reference)"
        )


def check_schedule(cfg: DictConfig) -> None:
    sched = cfg.schedule
    if sched.name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {sched.name!r}; choose one of: {', '.join(SCHEDULES)}")
    for key, low in (("epochs", 0), ("finetune_epochs", 0), ("ramp_epochs", 0),
                     ("prune_every_steps", 1)):  # fmt: skip
        whole_number(f"schedule.{key}", sched.get(key, low), low, 2)
    if sched.name in ("gradual", "iterative") and sched.ramp_epochs < 1:
        raise ConfigError(
            f"schedule.ramp_epochs must be ≥ 1 for the {sched.name} schedule "
            "(e.g. schedule.ramp_epochs=5)"
        )
    if total_epochs(cfg) == 0:
        raise ConfigError("schedule.epochs + schedule.finetune_epochs is 0: nothing to train")
    if sched.name == "lottery":
        check_lottery(sched)


def check_lottery(sched: DictConfig) -> None:
    """A lottery ticket needs a dense phase to find its mask in, an epoch of it to rewind
    to, and retraining epochs."""
    whole_number("schedule.epochs", sched.epochs, 1, 10)
    whole_number("schedule.finetune_epochs", sched.finetune_epochs, 1, 10)
    r = whole_number("schedule.rewind_epoch", sched.get("rewind_epoch", 0), 0, 0)
    if r >= sched.epochs:
        raise ConfigError(
            f"schedule.rewind_epoch={r} must be below schedule.epochs={sched.epochs} (0 rewinds "
            "to the initial weights)"
        )
    if not isinstance(sched.get("reinit", False), bool):
        raise ConfigError(f"schedule.reinit must be true or false, got {sched.reinit!r}")


def check_optim(optim: DictConfig) -> None:
    if optim.name not in ("adam", "adamw", "sgd"):
        raise ConfigError(f"unknown optim.name {optim.name!r}; choose adam, adamw or sgd")
    if optim.lr_schedule not in ("constant", "cosine"):
        raise ConfigError(
            f"unknown optim.lr_schedule {optim.lr_schedule!r}; choose cosine or constant"
        )
    for key in ("lr", "finetune_lr_scale"):
        value = optim[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"optim.{key} must be positive, got {value}")
    if not (isinstance(optim.weight_decay, (int, float)) and optim.weight_decay >= 0):
        raise ConfigError(f"optim.weight_decay must be ≥ 0, got {optim.weight_decay}")
    whole_number("optim.average_epochs", optim.get("average_epochs", 0), 0, 3)


def check_model_sizes(sizes: list[Any]) -> None:
    if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0
                             for s in sizes):  # fmt: skip
        raise ConfigError(
            f"model.sizes must be ≥ 2 positive integers, got {sizes} "
            "(e.g. model.sizes=[784,1000,1000,500,200,10])"
        )


def check_sizes(sizes: list[int], n_features: int, n_classes: int, dataset: str) -> None:
    """The MLP's first and last sizes must match the data's inputs and classes."""
    if sizes[0] != n_features or sizes[-1] != n_classes:
        fixed = [n_features, *sizes[1:-1], n_classes]
        raise ConfigError(
            f"model.sizes {sizes} does not fit {dataset} ({n_features} inputs, {n_classes} "
            f"classes); use model.sizes=[{','.join(map(str, fixed))}]"
        )


def stack_key(cfg: DictConfig) -> str:
    """Jobs with equal keys can train as one stack: equal in all but ``MEMBER_KEYS``."""
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    for key in MEMBER_KEYS:
        *parents, leaf = key.split(".")
        node = resolved
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return config_hash(resolved, length=12)


def check_stack(cfgs: Sequence[DictConfig]) -> None:
    """Every job valid and writable, and all of them able to share one stack."""
    for cfg in cfgs:
        check(cfg)
        check_writable_dir(Path(cfg.paths.output_dir))
    if len({stack_key(c) for c in cfgs}) > 1:
        raise ConfigError(
            "stacked jobs must differ only in strategy name, sparsity and seed; group them with "
            "run.group_jobs (hydra/launcher=stacked does)"
        )


def check_max_members(max_members: Any) -> int:
    """``hydra.launcher.max_members``: how many jobs one stack may hold."""
    if isinstance(max_members, bool) or not isinstance(max_members, int) or max_members < 1:
        raise ConfigError(
            f"hydra.launcher.max_members must be ≥ 1, got {max_members} (e.g. max_members=64)"
        )
    return max_members


def check_workers(n_jobs: int, n_gpus: int) -> None:
    """Refuse a ``local_gpus`` worker count the visible GPUs cannot serve."""
    if n_gpus < 1:
        raise ConfigError(
            "hydra/launcher=local_gpus needs a GPU but none is visible; "
            "drop it to run on the CPU, or use hydra/launcher=slurm"
        )
    if n_jobs > n_gpus:
        raise ConfigError(
            f"hydra.launcher.n_jobs={n_jobs} but only {n_gpus} GPU(s) are visible; use "
            f"n_jobs ≤ {n_gpus} (more jobs than GPUs queue on their own)"
        )


def check_writable_dir(path: Path, what: str = "output dir") -> None:
    """Refuse, in one line, a folder that cannot be created or written.

    Checked before any work so that a week-long sweep does not die at its first result. The
    nearest existing ancestor must be a folder in which a (removed again) subfolder can be
    made: permission bits alone say yes to root in ``/proc``.
    """
    path = Path(path)
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(
            f"cannot create {what} {path}: {probe} is a file, not a folder; choose another "
            "(hydra.run.dir=… or hydra.sweep.dir=…)"
        )
    try:
        Path(tempfile.mkdtemp(prefix=".prunelab-probe-", dir=probe)).rmdir()
    except OSError as e:
        raise ConfigError(
            f"cannot write to {what} {path} ({probe}: {e.strerror or e}); choose another"
        ) from None


def check_argv(argv: list[str], conf_dir: Path = CONF_DIR) -> None:
    """Reject bad command-line overrides in one line, before Hydra starts.

    The overrides are read by Hydra's own argument and override parsers, so every value
    Hydra accepts is seen as Hydra sees it (``model.sizes=[784,1000,1000,500,200,10]`` is one
    list, not six sweep values). Hydra's own messages for the errors below span a dozen lines
    or come too late: unparsable overrides, a config group choice that does not exist
    (``strategy=magnitude``; sweep lists item by item), a sweep list naming one value twice
    (two jobs would share one folder), and a run or sweep dir that cannot be created.
    """
    args, _ = get_args_parser().parse_known_args(argv)
    try:
        overrides = OverridesParser.create().parse_overrides(args.overrides)
    except OverrideParseException as e:
        first = str(e).strip().splitlines()[0]
        raise ConfigError(f"cannot read the overrides: {first} (write key=value)") from None
    for o in overrides:
        key = o.key_or_group
        if isinstance(o.value(), ChoiceSweep):
            items = list(o.sweep_string_iterator())
        elif o.is_sweep_override():
            continue  # range() and glob() sweeps: Hydra expands them
        else:
            items = [o.get_value_element_as_str()]
        if len(set(items)) < len(items):
            dup = sorted({v for v in items if items.count(v) > 1})
            raise ConfigError(
                f"{key}={','.join(items)} lists {', '.join(dup)} more than once; give each "
                "value once"
            )
        if key in ("hydra.run.dir", "hydra.sweep.dir") and not o.is_delete():
            check_writable_dir(Path(items[0]), key)
        group = conf_dir / key
        # hydra/* groups also hold the plugins' options (joblib, submitit_local, …)
        if "." in key or "@" in key or key.startswith("hydra/") or not group.is_dir():
            continue
        known = sorted(p.stem for p in group.glob("*.yaml"))
        for choice in items:
            if choice and choice != "null" and choice not in known:
                raise ConfigError(f"unknown {key} {choice!r}; choose one of: {', '.join(known)}")


def total_epochs(cfg: DictConfig) -> int:
    """Dense, pruning-window (gradual, iterative) and fine-tune epochs."""
    s = cfg.schedule
    return s.epochs + s.get("ramp_epochs", 0) + s.finetune_epochs


def lr_epochs(cfg: DictConfig) -> int:
    """Epochs of the main learning-rate schedule (``schedules.lr_horizon``)."""
    s = cfg.schedule
    return lr_horizon(s.name, s.epochs, s.get("ramp_epochs", 0))


def optim_settings(cfg: DictConfig) -> dict[str, Any]:
    """The optimiser and learning-rate keyword arguments of the training module."""
    o = cfg.optim
    return {
        "lr": o.lr,
        "weight_decay": o.weight_decay,
        "optimizer": o.name,
        "lr_schedule": o.lr_schedule,
        "dense_epochs": lr_epochs(cfg),
        "finetune_lr_scale": o.finetune_lr_scale,
        "total_epochs": total_epochs(cfg),
        "rewind_epoch": rewind_epoch(cfg),
    }


def rewind_epoch(cfg: DictConfig) -> int | None:
    """The epoch whose weights a lottery ticket is rewound to; None for other schedules."""
    return cfg.schedule.rewind_epoch if cfg.schedule.name == "lottery" else None

"""Every setting of a job: its default, type, range and meaning, in one place.

The dataclasses below are the schema of the Hydra config tree. They are registered in
Hydra's ConfigStore (``register``): ``conf/config.yaml`` starts its defaults list with the
root schema, and each ``conf/schedule/*.yaml`` with its schedule's, so Hydra composes every
YAML group *into* these types, with these defaults. The YAML files hold only what a group
choice or a preset changes (MNIST's mean, a preset's epochs, a sweep's grid).

Ranges and choices sit in each field's metadata (``setting``) and are enforced by
``config.checks``, which also refuses what Hydra lets through: a ``+key`` this schema lacks,
``save_model=2`` (OmegaConf reads any integer as a bool), a NaN. A schedule's settings are
declared with its algorithm (``prunelab.schedules``, one module per family), and derived
values (total epochs, the learning rate's horizon) are its properties, so no caller
recomputes them from raw keys; here the job holds whichever one ``schedule=`` picks.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from prunelab.schedules import SCHEDULES, Schedule
from prunelab.settings import setting

# The schedules' base by its former name here, which the module and plug-ins import.
ScheduleConfig = Schedule

CHALLENGE_SIZES = [784, 1000, 1000, 500, 200, 10]
# Choices that belong to the schema's own vocabulary; criteria, allocations, schedules and
# datasets are checked against their registries (``config.values.REGISTRIES``) instead.
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("cosine", "constant")
MATMUL_PRECISIONS = ("highest", "high", "medium")
PRECISIONS = ("32-true", "64-true", "bf16-mixed", "16-mixed")
ACCELERATORS = ("cpu", "gpu", "cuda")


@dataclass
class DataConfig:
    name: str = setting(
        help="the dataset; pick it with data=mnist|fashion_mnist|cifar10", label="data"
    )
    # A number, or one per channel (CIFAR-10's R, G, B): typed Any, as OmegaConf has no
    # union of a float and a list; ``config.checks`` allows exactly these two forms.
    mean: Any = setting(help="per-pixel mean of the training set (or one per channel), subtracted")
    std: Any = setting(
        help="per-pixel std of the training set (or one per channel), inputs are divided by it",
        low=0,
        low_open=True,
    )
    batch_size: int = setting(512, "training batch size", low=1)
    eval_batch_size: int = setting(10000, "evaluation batch size (no gradients)", low=1)
    eval_train_limit: int | None = setting(
        10000,
        "the reported train accuracy is measured on the first N training images "
        "(null = all of them)",
        low=1,
    )
    limit: int | None = setting(
        None,
        "cap every split (train, val, test) at N samples, for quick runs; null = all",
        low=1,
        example="data.limit=2000",
    )
    download: bool = setting(True, "try the canonical mirrors (checksummed) if no offline copy")
    augment: bool = setting(
        False, "random crop (4 px padding) and horizontal flip of training images (CIFAR-10)"
    )


@dataclass
class ModelConfig:
    """Which network trains (``prunelab.models``): the challenge MLP of ``sizes`` by
    default, a built-in conv net, or a module of your own named by import path."""

    name: str = setting(
        "mlp",
        "the model: mlp (the challenge's), lenet5 (LeNet-5-Caffe), conv6 (Conv-6, 32x32 "
        "images), or your own nn.Module as package.module:Class (see prunelab.models)",
        label="model",
        example="model=lenet5",
    )
    sizes: list[int] = setting(
        CHALLENGE_SIZES,
        "inputs, hidden layers, classes of the bias-free ReLU MLP (model=mlp only)",
        low=1,
        example="model.sizes=[784,1000,1000,500,200,10]",
    )
    bias: bool = setting(False, "give every layer a bias (lenet5, conv6, or a model taking `bias`)")
    args: dict[str, Any] = setting(
        {},
        "keyword arguments of your model's constructor",
        example="+model.args.width=8",
    )


@dataclass
class StrategyConfig:
    """How masks are chosen: a criterion scores each weight or unit, an allocation spreads
    the sparsity over the pruned layers (``selection``). ``strategy=…`` picks a named pair
    from conf/strategy/ (weight = magnitude + uniform, snip = snip + global, …); either half
    can be overridden, and a plug-in named by import path (package.module:Class)."""

    name: str = setting(
        help="the strategy's name, which the report labels its results by; pick one with "
        "strategy=…",
        label="strategy",
        example="strategy=weight",
    )
    criterion: str = setting(
        help="how each weight or unit is scored (higher = kept): magnitude, unit_l2, random, "
        "random_unit, snip, grasp, synflow, taylor, taylor_unit, activation, apoz, "
        "activation_out, lamp, gradient, or a plug-in package.module:Class",
        label="strategy.criterion",
        example="strategy.criterion=snip",
    )
    allocation: str = setting(
        "uniform",
        "how the sparsity is spread over the pruned layers: uniform (k in each), global (one "
        "threshold over all), erk (Erdős–Rényi-Kernel), lamp (LAMP's per-layer counts)",
        label="strategy.allocation",
        example="strategy.allocation=global",
    )
    shuffle: bool = setting(
        False,
        "control: keep the per-layer counts the method chose but draw the kept weights at "
        "random within each layer (Frankle et al. 2021's layerwise shuffle)",
    )
    score_batches: int = setting(
        1,
        "training batches a data-driven criterion (snip, grasp, taylor, activation…) scores "
        "on, drawn from the run's own `score` stream",
        low=1,
    )
    score_batch_size: int = setting(100, "images per scoring batch", low=1)
    prune_output: bool = setting(False, "prune the output layer too (the challenge never does)")
    layer_sparsity: list[float] | None = setting(
        None,
        "one sparsity per pruned layer in place of `sparsity`, which must then be 0 (the "
        "dense reference) or their weighted mean (allocation=uniform only)",
        low=0,
        high=1,
        high_open=True,
        example="strategy.layer_sparsity=[0.92,0.91,0.74]",
    )


@dataclass
class OptimConfig:
    """The optimizer. The dense-phase defaults (Adam at a constant 2e-3, the dense model the
    mean of the weights of its last 60 % of epochs) are the recipe measured best on the dense
    model and on one-shot pruning (docs/results/dense-phase.md); fine-tuning keeps
    its own rate and schedule."""

    name: str = setting("adam", "the optimizer", choices=OPTIMIZERS, label="optim.name")
    lr: float = setting(
        2e-3, "the dense phase's learning rate", low=0, low_open=True, example="optim.lr=1e-3"
    )
    weight_decay: float = setting(0.0, "weight decay (decoupled for adamw)", low=0)
    lr_schedule: str = setting(
        "constant",
        "rate over the dense epochs: constant, or cosine (to ~0 at the last one)",
        choices=LR_SCHEDULES,
    )
    average_fraction: float = setting(
        0.6,
        "the dense model = the mean of the weights at the end of its last epochs, this share "
        "of them (0.6: the last 6 of 10; 0: off)",
        low=0,
        high=1,
        example="optim.average_fraction=0.6",
    )
    finetune_lr: float = setting(
        1e-3,
        "the rate after pruning (fine-tuning, the gradual ramp), whatever the dense phase's",
        low=0,
        low_open=True,
        example="optim.finetune_lr=1e-3",
    )
    finetune_lr_schedule: str = setting(
        "cosine",
        "after pruning: cosine (restart at finetune_lr, decay step by step to ~0) or constant",
        choices=LR_SCHEDULES,
    )

    @property
    def finetune_scale(self) -> float:
        """The fine-tuning rate as a multiple of the dense rate (``module.lr_factor``)."""
        return self.finetune_lr / self.lr

    def average_epochs(self, dense_epochs: int) -> int:
        """How many of ``dense_epochs`` epochs the dense model averages (0: none)."""
        return round(self.average_fraction * dense_epochs)


@dataclass
class TrainerConfig:
    """Keyword arguments of ``pytorch_lightning.Trainer``; pick a set with trainer=cpu|gpu."""

    accelerator: str = setting("cpu", "cpu or gpu", choices=ACCELERATORS, example="trainer=gpu")
    devices: int = setting(1, "devices per job (prunelab trains on one)", low=1, high=1)
    precision: str = setting(
        "32-true", "Lightning precision: bf16 autocast is bf16-mixed", choices=PRECISIONS
    )
    deterministic: bool = setting(True, "deterministic kernels (same bits on every run)")
    enable_progress_bar: bool = setting(False, "Lightning's own bar (see progress_bar)")
    enable_model_summary: bool = setting(False, "print Lightning's model summary")
    log_every_n_steps: int = setting(50, "Lightning's logging interval", low=1)
    num_sanity_val_steps: int = setting(0, "validation steps before training", low=0)


@dataclass
class LoggerConfig:
    """How a job's curves are written; pick it with logger=csv|tensorboard|mlflow|wandb."""

    _target_: str = setting("prunelab.logs.csv_log", "the logger's factory")
    save_dir: str = setting("${paths.output_dir}", "where its files go")


@dataclass
class PathsConfig:
    data_dir: str = setting(
        "${oc.env:PRUNELAB_DATA_DIR,data}", "IDX files of the dataset (else the bundled copy)"
    )
    cache_dir: str = setting(
        "${oc.env:PRUNELAB_CACHE_DIR,outputs/cache/dense}", "the dense cache's entries"
    )
    output_dir: str = setting("${hydra:runtime.output_dir}", "the job's folder (set by Hydra)")


@dataclass
class Config:
    """A job: what to train and prune, how, and where its files go."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    # Any, not ScheduleConfig: a plug-in schedule's YAML has keys the base lacks; ``checks``
    # types the node with the class its ``schedule.name`` names.
    schedule: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    sparsity: float = setting(
        0.9,
        "fraction of the weights (or units, for a unit criterion) removed: in each pruned "
        "layer (allocation=uniform) or over all of them together (global, erk, lamp)",
        low=0,
        high=1,
        high_open=True,
        example="sparsity=0.9 for 90 %",
    )
    seed: int = setting(0, "the run's seed: its init, batch orders and random masks", low=0)
    optim: OptimConfig = field(default_factory=OptimConfig)
    finetune_guard: bool = setting(
        True,
        "undo a fine-tune that did not get finetune_min_correct more validation images "
        "right than the model had right after pruning",
    )
    finetune_min_correct: int = setting(
        10,
        "validation images a fine-tune must get right beyond those the model had right after "
        "pruning to be kept",
        low=0,
    )
    progress_bar: str = setting(
        "auto",
        "a progress bar besides the epoch lines: auto = for a single run whose output "
        "is a terminal",
        choices=("auto", "true", "false"),
    )
    float32_matmul_precision: str = setting(
        "highest",
        "float32 matmuls on GPUs: highest (exact fp32), high (TF32), medium",
        choices=MATMUL_PRECISIONS,
    )
    eval_test_every_epoch: bool = setting(
        True, "evaluate the test split after every epoch (the test-accuracy-vs-epoch curves)"
    )
    save_model: bool = setting(True, "save the final weights and masks as model.pt")
    dense_cache: bool = setting(True, "train each dense phase once and prune copies of it")
    inference_batch_size: int | None = setting(
        64,
        "time the pruned model's inference export against the dense one at this batch "
        "size; null to skip; skipped too when data.limit is set (a quick look: the timing "
        "would take most of its time and say nothing new)",
        low=1,
    )
    checkpoint_every_n_epochs: int = setting(
        0,
        "keep last.ckpt every N epochs so a killed job resumes (0: off)",
        low=0,
        example="checkpoint_every_n_epochs=5",
    )
    checkpoint_max_share: float = setting(
        0.05,
        "skip a checkpoint while saving would exceed this share of the training time",
        low=0,
        low_open=True,
        high=1,
    )
    on_mismatch: str = setting(
        "stop",
        "a job folder holding results of another config: stop (say which keys "
        "differ) or rerun (train again, keeping the old files in .superseded-<id>/)",
        choices=("stop", "rerun"),
    )
    paths: PathsConfig = field(default_factory=PathsConfig)


ROOT_SCHEMA = "prunelab_schema"
SCHEDULE_SCHEMA_GROUP = "prunelab_schema/schedule"


def register() -> None:
    """Put the schema in Hydra's ConfigStore: the root as ``prunelab_schema`` (first in
    ``conf/config.yaml``'s defaults) and each schedule as ``prunelab_schema/schedule/<name>``
    (first in ``conf/schedule/<name>.yaml``'s). Idempotent."""
    store = ConfigStore.instance()
    store.store(name=ROOT_SCHEMA, node=Config)
    for name in SCHEDULES.names():
        store.store(group=SCHEDULE_SCHEMA_GROUP, name=name, node=SCHEDULES.get(name))


def type_hints(cls: type) -> dict[str, Any]:
    """The resolved annotation of every field of ``cls`` (annotations are strings here)."""
    return typing.get_type_hints(cls)


def schema_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def setting_keys() -> dict[str, list[str]]:
    """Every setting a job can have, dotted (``optim.lr``), with the schedules that have it
    for a ``schedule.`` key ([] for the others): what a mistyped key may have meant."""
    keys: dict[str, list[str]] = {}

    def add(cls: type, prefix: str) -> None:
        hints = type_hints(cls)
        for name in schema_fields(cls):
            if dataclasses.is_dataclass(hints[name]):
                add(hints[name], f"{prefix}{name}.")
            elif not (cls is Config and name == "schedule"):  # each schedule's own, below
                keys[f"{prefix}{name}"] = []

    add(Config, "")
    for kind in SCHEDULES.names():
        for name in schema_fields(SCHEDULES.get(kind)):
            keys.setdefault(f"schedule.{name}", []).append(kind)
    return keys


def setting_hint(key: str) -> Any:
    """The type a dotted setting of the schema has (None for a schedule's own key, whose
    class depends on the schedule, and for a key the schema lacks)."""
    cls: Any = Config
    *parents, leaf = key.split(".")
    for part in parents:
        cls = type_hints(cls).get(part) if dataclasses.is_dataclass(cls) else None
    return type_hints(cls).get(leaf) if dataclasses.is_dataclass(cls) else None

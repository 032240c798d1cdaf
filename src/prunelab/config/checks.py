"""Refuse a bad job config in one line, before any work: the schema's types, ranges and
choices (``schema.setting``), the keys it does not know, and the rules that tie keys together.

``load`` is the way in: it turns a composed config into a typed, checked ``schema.Config``,
the only form the layers below ever see. ``check_value`` also serves the command line
(``config.argv``), which checks each override's value as the user typed it: after Hydra has
composed it, ``save_model=2`` has already become ``true``.
"""

from __future__ import annotations

import importlib.util
import itertools

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from prunelab.config.schema import Config
from prunelab.config.tree import strategy_preset
from prunelab.config.values import (
    check_value,
    one_line,
    unknown_key,
    unknown_keys,
    walk,
)
from prunelab.data import DATASETS
from prunelab.errors import ConfigError
from prunelab.lazy import lazy_import
from prunelab.pruning import global_sparsity, prunable_layers
from prunelab.schedules import SCHEDULES, Schedule, SensitivitySchedule
from prunelab.selection import Method, method

torch = lazy_import("torch", __name__, "torch")  # only to ask whether CUDA is there

# What a built-in logger=… choice needs beyond prunelab's own dependencies: its choice name,
# the extra that installs it (pyproject.toml) and the modules any one of which will do
# (Lightning's TensorBoardLogger also writes with tensorboardX).
LOGGER_EXTRAS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "prunelab.logs.CsvAndTensorBoard": ("tensorboard", "tb", ("tensorboard", "tensorboardX")),
    "prunelab.logs.CsvAndMlflow": ("mlflow", "mlflow", ("mlflow",)),
    "prunelab.logs.CsvAndWandb": ("wandb", "wandb", ("wandb",)),
}


def load(cfg: DictConfig) -> Config:
    """The typed, checked job of a composed config: every key known to the schema, every
    value of its type, in its range and consistent with the others; else a ``ConfigError``.

    Resolves interpolations (``${paths.output_dir}``), so a job's output dir must be set.
    """
    cfg = typed(cfg)
    if "hydra" in cfg:
        with open_dict(cfg):
            del cfg["hydra"]
    for key, cls in unknown_keys(cfg):
        raise unknown_key(key, cls.__name__)
    for key, value, hint, f in walk(cfg):
        check_value(key, value, hint, f)
    try:
        job = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(one_line(e)) from None
    assert isinstance(job, Config), f"the root config is {type(job).__name__}, not Config"
    check_job(job)
    return job


def typed(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` typed by the schema: as it is when Hydra composed it, else merged
    into ``Config`` (with the schedule class its ``schedule.name`` names), which refuses an
    unknown key or a value of the wrong type in one line."""
    name = OmegaConf.select(cfg, "schedule.name")
    schedule = cfg._get_node("schedule") if isinstance(cfg, DictConfig) else None
    composed = isinstance(schedule, DictConfig) and is_schedule_node(schedule)
    if OmegaConf.get_type(cfg) is Config and composed:
        return cfg.copy()
    schema = OmegaConf.structured(Config)
    cls = SCHEDULES.get(name) if isinstance(name, str) else Schedule
    schema.schedule = OmegaConf.structured(cls)
    plain = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(plain, dict)
    plain.pop("hydra", None)
    try:
        return OmegaConf.merge(schema, plain)
    except OmegaConfBaseException as e:
        raise ConfigError(one_line(e)) from None


def is_schedule_node(node: DictConfig) -> bool:
    """Whether Hydra composed this schedule node from a schema class (a built-in schedule's
    YAML starts from one), not from a plug-in's plain YAML."""
    cls = OmegaConf.get_type(node)
    return isinstance(cls, type) and issubclass(cls, Schedule)


def check_job(job: Config) -> None:
    """The rules that tie settings together (each field alone is already checked)."""
    sizes = job.model.sizes
    if len(sizes) < 2:
        raise ConfigError(
            f"model.sizes must be ≥ 2 positive integers, got {sizes} "
            "(e.g. model.sizes=[784,1000,1000,500,200,10])"
        )
    check_schedule(job.schedule)
    check_method(job)
    check_scan(job)
    spec = DATASETS.get(job.data.name)
    if job.model.name == "mlp":
        if job.model.bias or job.model.args:
            raise ConfigError(
                "model=mlp is the challenge's bias-free MLP of model.sizes: model.bias and "
                "model.args are for lenet5, conv6 or your own model"
            )
        check_layer_sparsity(job, [a * b for a, b in itertools.pairwise(sizes)])
        if spec.shape is not None:  # else once the data is loaded (job_data.load_data)
            check_sizes(list(sizes), *spec.shape, job.data.name)
        return
    if spec.shape is not None:  # else once the data is loaded (wiring.new_member)
        shape = spec.sample_shape(spec.shape[0])
        check_layer_sparsity(job, model_weights(job, shape, spec.shape[1]))


def model_weights(job: Config, image_shape: tuple[int, ...], classes: int) -> list[int]:
    """The number of weights of each prunable layer of ``job``'s model for this data, from
    the model built on the meta device (no memory, no init) and probed; one line where it
    does not fit the data, or where the strategy prunes units the model cannot lose alone."""
    from prunelab.models import describe  # torch, for a model other than the MLP only
    from prunelab.pruning import prunable_layers

    try:
        graph, weights = describe(
            job.model.name, image_shape, classes, job.model.bias, job.model.args
        )
    except (ValueError, RuntimeError, TypeError) as e:
        raise ConfigError(
            f"model {job.model.name} does not fit {job.data.name} (samples of shape "
            f"{tuple(image_shape)}, {classes} classes): {one_line(e)}"
        ) from None
    pruned = [i for i, p in enumerate(prunable_layers(len(weights), job.strategy.prune_output))
              if p]  # fmt: skip
    if job_method(job).criterion.unit and (problem := graph.unit_problem(pruned)):
        raise ConfigError(f"{problem}; strategy={job.strategy.name} prunes units: use a weight "
                          "criterion (e.g. strategy=weight)")  # fmt: skip
    return weights


def check_schedule(schedule: Schedule) -> None:
    expected = SCHEDULES.get(schedule.name)
    if type(schedule) is not expected:
        raise ConfigError(
            f"schedule.name={schedule.name} does not match the chosen schedule "
            f"({type(schedule).KIND}); choose it with schedule={schedule.name} instead"
        )
    for problem in schedule.problems():
        raise ConfigError(problem)


def job_method(job: Config) -> Method:
    """The criterion and allocation ``job.strategy`` names, instantiated."""
    s = job.strategy
    return method(s.criterion, s.allocation, s.shuffle)


def check_method(job: Config) -> None:
    """A name that tells the truth and a criterion and an allocation that fit together.

    ``strategy.name`` labels the results; where it names a preset of conf/strategy/, its
    criterion must be that preset's, so ``strategy.name=neuron`` alone cannot label
    magnitude pruning "neuron" (``strategy=neuron`` picks the preset). ERK and LAMP spread
    *weights* over layers, so they refuse a unit criterion."""
    s = job.strategy
    preset = strategy_preset(s.name)
    if preset is not None:
        expected = preset[0]
        if expected != s.criterion:
            raise ConfigError(
                f"strategy.name={s.name} names the preset whose criterion is {expected}, but "
                f"strategy.criterion={s.criterion}; pick the preset with strategy={s.name}, or "
                "give the strategy a name of its own"
            )
    m = job_method(job)
    if m.criterion.unit and m.allocation.weights_only:
        raise ConfigError(
            f"strategy.allocation={s.allocation} spreads weights, but strategy.criterion="
            f"{s.criterion} scores units; use strategy.allocation=uniform or global"
        )


def check_scan(job: Config) -> None:
    """A sensitivity scan chooses each layer's k itself: a profile given to it would be
    ignored, so it is refused rather than silently dropped."""
    if isinstance(job.schedule, SensitivitySchedule) and job.strategy.layer_sparsity is not None:
        raise ConfigError(
            "schedule=sensitivity prunes each layer alone at each k of schedule.grid, so "
            "strategy.layer_sparsity does not apply to it: set strategy.layer_sparsity=null "
            "(its budget.json gives the profile to use in a run)"
        )


def check_layer_sparsity(job: Config, n_weights: list[int]) -> None:
    """``strategy.layer_sparsity``: one k per pruned layer (of ``n_weights`` weights each);
    ``sparsity`` then labels the run and must be 0 (the dense reference) or the profile's
    global fraction, so that the report's k column stays true."""
    profile = job.strategy.layer_sparsity
    if profile is None:
        return
    prunable = prunable_layers(len(n_weights), job.strategy.prune_output)
    pruned = [n for n, p in zip(n_weights, prunable, strict=True) if p]
    if len(profile) != len(pruned):
        where = "hidden and output" if job.strategy.prune_output else "hidden"
        eg = ",".join(["0.9"] * len(pruned))
        raise ConfigError(
            f"strategy.layer_sparsity needs one value per pruned layer ({len(pruned)} {where} "
            f"layers), got {profile!r} (e.g. strategy.layer_sparsity=[{eg}]; the output "
            "layer counts only with strategy.prune_output=true)"
        )
    if not job_method(job).allocation.per_layer:
        raise ConfigError(
            f"strategy.layer_sparsity does not apply to {job.strategy.name} (its allocation, "
            f"{job.strategy.allocation}, sets each layer's sparsity itself); use "
            "strategy.allocation=uniform or set strategy.layer_sparsity=null"
        )
    overall = global_sparsity(profile, pruned)
    if job.sparsity != 0 and abs(job.sparsity - overall) > 0.005:
        raise ConfigError(
            f"sparsity={job.sparsity} does not match strategy.layer_sparsity, which removes "
            f"{overall:.4f} of the pruned weights; set sparsity={overall:.4g} (or 0 for the "
            "dense reference)"
        )


def check_environment(job: Config) -> None:
    """What this machine must offer the job: a GPU if it asks for one, and the package its
    logger writes with. Checked where the job runs, not where a cluster job is submitted
    from."""
    if job.trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError("trainer=gpu but no CUDA device is visible; use trainer=cpu")
    check_logger(job.logger._target_)


def check_logger(target: str) -> None:
    """A built-in logger's package is installed; else one line naming the extra, before any
    job trains (the logger's own import would fail later, mid-sweep, with a traceback).
    Looked up without importing it: mlflow and wandb take seconds to import."""
    if target not in LOGGER_EXTRAS:
        return
    choice, extra, modules = LOGGER_EXTRAS[target]
    if not any(importlib.util.find_spec(module) for module in modules):
        raise ConfigError(
            f'logger={choice} needs the {extra} extra: pip install "prunelab[{extra}]"'
        )


def check_sizes(sizes: list[int], n_features: int, n_classes: int, dataset: str) -> None:
    """The MLP's first and last sizes must match the data's inputs and classes. The fix
    offered keeps every size given as a hidden layer except an end that already fits:
    [784,300,100] for MNIST was [784,300,100,10] with its output forgotten."""
    if sizes[0] != n_features or sizes[-1] != n_classes:
        inner = sizes[1:] if sizes[0] == n_features else sizes
        hidden = inner[:-1] if inner and inner[-1] == n_classes else inner
        fixed = [n_features, *hidden, n_classes]
        raise ConfigError(
            f"model.sizes {sizes} does not fit {dataset} ({n_features} inputs, {n_classes} "
            f"classes); use model.sizes=[{','.join(map(str, fixed))}]"
        )

"""The YAML config tree on disk, and the part of ``--help`` that describes it: the groups
with their choices, and every setting with its default and meaning, read from the schema, so
the help cannot drift from what a run accepts."""

from __future__ import annotations

import dataclasses
import functools
import textwrap
from pathlib import Path

from omegaconf import OmegaConf

from prunelab.allocation import ALLOCATIONS
from prunelab.config.schema import Config, StrategyConfig, schema_fields
from prunelab.criteria import CRITERIA
from prunelab.errors import ConfigError, PrunelabError
from prunelab.identity import show
from prunelab.schedules import SCHEDULES, Schedule
from prunelab.selection import Method, method


def conf_dir() -> Path:
    """The Hydra config tree: ``prunelab/conf`` inside an installed wheel, else the
    repository's top-level ``conf/`` (a checkout, an editable install, ``PYTHONPATH=src``)."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "conf"
    return packaged if (packaged / "config.yaml").is_file() else package.parents[1] / "conf"


CONF_DIR = conf_dir()


@functools.cache
def strategy_preset(name: str, conf: Path = CONF_DIR) -> tuple[str, str] | None:
    """(criterion, allocation) of the strategy preset conf/strategy/<name>.yaml, the
    allocation the schema's default where the YAML leaves it out; None if there is no such
    preset. Read once per process: every job of a sweep checks its name against it."""
    path = conf / "strategy" / f"{name}.yaml"
    if not path.is_file():
        return None
    preset = OmegaConf.load(path)
    default = schema_fields(StrategyConfig)["allocation"].default
    return str(preset.criterion), str(preset.get("allocation", default))


def strategy_method(name: str, conf: Path = CONF_DIR) -> Method:
    """The method of the named strategy preset (conf/strategy/<name>.yaml), for code that
    prunes without a run config: ``net.prune(strategy_method("weight"), 0.9)``. The YAML is
    the one place that says what a strategy name means."""
    preset = strategy_preset(name, conf)
    if preset is None:
        known = ", ".join(group_choices(conf).get("strategy", []))
        raise ConfigError(f"unknown strategy {name!r}; choose one of: {known}")
    return method(*preset)


WIDTH, KEY_WIDTH = 100, 40  # --help's lines, and its key=default column


def schedule_class(schedule: str) -> type[Schedule] | None:
    """The class of the schedule named ``schedule``; None for one that cannot be found (a
    report may read results of a plug-in this machine does not have)."""
    try:
        return SCHEDULES.get(schedule)
    except PrunelabError:
        return None


def method_name(strategy: str, schedule: str) -> str:
    """What a job's method is called in run folders and the report: its strategy, or the
    schedule where the schedule is the method (``Schedule.USUAL_STRATEGY``: ``rigl``;
    ``rigl-weight`` when it starts from another strategy than its usual one)."""
    cls = schedule_class(schedule)
    usual = cls.USUAL_STRATEGY if cls is not None else None
    if usual is None:
        return strategy
    return schedule if strategy == usual else f"{schedule}-{strategy}"


def run_name(strategy: str, schedule: str, sparsity: float, levels: int | None = None) -> str:
    """What a single run's folder is called (after its time stamp): what ran, so that SNIP
    after dense training and SNIP at init, or an IMP job and a one-shot prune, never share
    a name. ``weight_k0.9`` (the challenge's one-shot prune), ``snip-init_k0.95``,
    ``rigl_k0.98``, ``imp_L5`` (IMP's k is where its levels end, not what was asked),
    ``weight-sensitivity`` (a scan, whose k are its grid)."""
    cls = schedule_class(schedule)
    method = method_name(strategy, schedule)
    if cls is not None and cls.RUNS_LEVELS:
        return f"{method}_L{levels}"
    if cls is not None and cls.WORKFLOW is not None:  # a scan: `sparsity` is not its k
        return f"{method}-{schedule}"
    k = f"k{float(sparsity):g}"
    if (cls is not None and cls.USUAL_STRATEGY is not None) or schedule == "oneshot":
        return f"{method}_{k}"
    return f"{method}-{schedule}_{k}"


def group_choices(conf: Path = CONF_DIR) -> dict[str, list[str]]:
    """Each config group of the tree (a folder of YAML files, ``hydra/`` excepted) and its
    choices, the file names."""
    return {
        d.name: sorted(p.stem for p in d.glob("*.yaml"))
        for d in sorted(conf.iterdir())
        if d.is_dir() and d.name != "hydra" and any(d.glob("*.yaml"))
    }


def groups_help(conf: Path = CONF_DIR) -> str:
    """``group: choice, choice`` lines for ``--help``."""
    lines = [f"  {g}: {', '.join(c)}" for g, c in group_choices(conf).items()]
    # What a strategy is made of, to combine freely (strategy=weight strategy.allocation=erk)
    lines.append(f"  strategy.criterion: {', '.join(CRITERIA.names())}")
    lines.append(f"  strategy.allocation: {', '.join(ALLOCATIONS.names())}")
    return "\n".join(lines)


def settings_lines(cls: type, prefix: str = "", skip: tuple[str, ...] = ()) -> list[str]:
    """``key=default  help`` for every setting of dataclass ``cls`` (nested ones expanded)."""
    lines = []
    for name, f in schema_fields(cls).items():
        if name in skip:
            continue
        key = f"{prefix}{name}"
        default = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        if dataclasses.is_dataclass(default):
            lines += settings_lines(type(default), f"{key}.")
            continue
        if default is dataclasses.MISSING or default == "???":
            continue  # set by the group choice (data.mean, strategy.name, …)
        head = f"  {key}={show(default)}".ljust(KEY_WIDTH)
        text = textwrap.wrap(f.metadata.get("help", ""), WIDTH - KEY_WIDTH - 1) or [""]
        lines.append(f"{head} {text[0]}")
        lines += [" " * (KEY_WIDTH + 1) + more for more in text[1:]]
    return lines


def settings_help() -> str:
    """Every setting of a job, for ``--help``; the schedule keys per schedule."""
    lines = settings_lines(Config, skip=("paths", "logger"))
    for name in SCHEDULES.names():
        cls = SCHEDULES.get(name)
        doc = " ".join((cls.__doc__ or "").split())
        lines += textwrap.wrap(f"schedule={name}: {doc}", WIDTH, initial_indent="  ",
                               subsequent_indent="      ")  # fmt: skip
        lines += ["  " + line for line in settings_lines(cls, "schedule.", skip=("name",))]
    lines.append("  paths.data_dir, paths.cache_dir: where the data and the dense cache live")
    return "\n".join(lines)

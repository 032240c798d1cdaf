"""The command line, checked before Hydra starts: every job it asks for, in one line each.

``check_argv`` reads the overrides with Hydra's own argument and override parsers, so every
value is seen as Hydra sees it (``model.sizes=[784,1000,10]`` is one list, not three sweep
values). It refuses what Hydra would report in a dozen lines, or too late: an unparsable
override, an unknown group choice, a sweep list naming one value twice (two jobs would share
a folder), a folder that cannot be written. Then ``check_jobs`` builds each job's config as
Hydra will, and refuses a value of the wrong type or range (``save_model=2``, ``data.std=0``),
an unknown key (``+trainer.max_epochs=3``), a job whose settings contradict each other, and a
job folder that holds another config's result: all before the first job starts, so a sweep
that would fail at its 40th job fails at once and trains nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from prunelab import slurm
from prunelab.config.checks import check_environment, is_schedule_node, load
from prunelab.config.schema import schema_fields, setting_hint, type_hints
from prunelab.config.tree import CONF_DIR
from prunelab.config.values import check_value, one_line, unknown_key
from prunelab.errors import ConfigError
from prunelab.identity import identity
from prunelab.results import check_prior, check_prior_checkpoint
from prunelab.schedules import SCHEDULES

# Sweepers that expand a sweep as Hydra's basic one does (``checked`` is prunelab's default:
# the basic one, less its own re-composition of every job, which ``check_jobs`` makes moot).
BASIC_SWEEPERS = (
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
    "hydra_plugins.prunelab_launcher.checked_sweeper.CheckedSweeper",
)


# The study presets that left conf/experiment (and the wheel) for their study's folder,
# studies/<question>/conf/experiment, by name: the study each went to. A command line that
# still names one without that folder on Hydra's search path is told where it went (goes in a
# later release, with the stubs left in scripts/).
MOVED_PRESETS = {
    "allocation": "allocation",
    "budget_lenet5": "sensitivity",
    "budget_mlp": "sensitivity",
    "dst_lenet300": "sparse_training",
    "family_lenet300": "sparse_training",
    "finetune_length": "finetune",
    "han_lenet300": "papers",
    "imp_lenet300": "lottery",
    "init_lenet300": "init",
    "lenet5_channels": "weight_vs_unit",
    "lenet5_dst": "sparse_training",
    "lenet5_han": "papers",
    "lottery_lenet300": "lottery",
    "scan_lenet5": "sensitivity",
    "unit_criteria": "unit_criteria",
}


def check_argv(argv: list[str], conf_dir: Path = CONF_DIR) -> None:
    """Refuse a bad command line in one line, before Hydra starts (see the module doc)."""
    args, _ = get_args_parser().parse_known_args(argv)
    overrides = parse(args.overrides)
    trees = config_trees(overrides, conf_dir)
    check_moved_presets(overrides, trees)
    for o in overrides:
        check_override_syntax(o, conf_dir, trees)
    other_tree = args.config_path or args.config_dir or args.config_name
    asks_for_info = args.help or args.hydra_help or args.cfg or args.info
    if not (other_tree or asks_for_info or args.shell_completion):
        check_jobs(overrides, bool(args.multirun), conf_dir)


def parse(lines: Sequence[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(list(lines))
    except OverrideParseException as e:
        first = str(e).strip().splitlines()[0]
        raise ConfigError(f"cannot read the overrides: {first} (write key=value)") from None


def config_trees(overrides: Sequence[Override], conf_dir: Path) -> list[Path] | None:
    """The config folders Hydra will search: prunelab's, then those a
    ``hydra.searchpath=[file://…]`` override adds (a plug-in's YAML files); None when one is
    a ``pkg://`` path, which only Hydra resolves (its group choices are then not checked
    here)."""
    trees = [conf_dir]
    for o in overrides:
        if o.key_or_group == "hydra.searchpath" and not o.is_delete():
            for entry in o.value() or []:  # type: ignore[union-attr]
                if not str(entry).startswith("file://"):
                    return None
                trees.append(Path(str(entry).removeprefix("file://")))
    return trees


def check_moved_presets(overrides: Sequence[Override], trees: list[Path] | None) -> None:
    """Refuse, saying where it went, an ``experiment=`` choice that is a study preset now
    (``MOVED_PRESETS``) when none of the config ``trees`` holds it: without the study's folder
    on the search path Hydra would only list the presets that are left."""
    for o in overrides:
        if o.key_or_group != "experiment" or trees is None or o.is_delete():
            continue
        if isinstance(o.value(), ChoiceSweep):
            items = list(o.sweep_string_iterator())
        elif o.is_sweep_override():
            continue  # a glob() sweep: Hydra expands it over the presets that are there
        else:
            items = [o.get_value_element_as_str()]
        for name in items:
            study = MOVED_PRESETS.get(name)
            if study and not any((t / "experiment" / f"{name}.yaml").is_file() for t in trees):
                conf = f"studies/{study}/conf"
                raise ConfigError(
                    f"experiment={name} is a study preset now: {conf}/experiment/{name}.yaml; "
                    f"run bash studies/{study}/run.sh, or add hydra.searchpath=[file://{conf}]"
                )


def check_override_syntax(o: Override, conf_dir: Path, trees: list[Path] | None = None) -> None:
    """One override on its own: no value twice in a sweep list, a writable run or sweep dir,
    and a group choice that exists in one of the config ``trees`` (sweep lists item by
    item)."""
    key = o.key_or_group
    if isinstance(o.value(), ChoiceSweep):
        items = list(o.sweep_string_iterator())
    elif o.is_sweep_override():
        return  # range() and glob() sweeps: Hydra expands them
    else:
        items = [o.get_value_element_as_str()]
    if len(set(items)) < len(items):
        dup = sorted({v for v in items if items.count(v) > 1})
        raise ConfigError(
            f"{key}={','.join(items)} lists {', '.join(dup)} more than once; give each value once"
        )
    if key in ("hydra.run.dir", "hydra.sweep.dir") and not o.is_delete():
        check_writable_dir(Path(items[0]), key)
    if len(items) > 1 and is_list_hint(setting_hint(key)) and "[" not in o.input_line:
        raise ConfigError(
            f"{key} takes a list: write it in brackets, {key}=[{','.join(items)}] (with -m, "
            f"a sweep over lists is {key}=[…],[…])"
        )
    if is_group(o, conf_dir) and not key.startswith("hydra/") and trees is not None:
        known = sorted({p.stem for tree in trees for p in (tree / key).glob("*.yaml")})
        for choice in items:
            if not choice and not o.is_delete():
                raise ConfigError(f"{key}= names no choice; choose one of: {', '.join(known)}")
            if choice and choice != "null" and choice not in known:
                raise ConfigError(f"unknown {key} {choice!r}; choose one of: {', '.join(known)}")


def is_list_hint(hint: Any) -> bool:
    """Whether a setting's type is a list (``list[int]``, ``list[float] | None``)."""
    return typing.get_origin(hint) is list or any(
        typing.get_origin(a) is list for a in typing.get_args(hint)
    )


def is_group(o: Override, conf_dir: Path) -> bool:
    """Whether an override picks a config group's choice (``strategy=neuron``,
    ``hydra/launcher=stacked``) rather than setting a value."""
    key = o.key_or_group
    if "." in key or "@" in key:
        return False
    return key.startswith("hydra/") or (conf_dir / key).is_dir()


def check_jobs(overrides: list[Override], multirun: bool, conf_dir: Path = CONF_DIR) -> None:
    """Build every job of the command as Hydra will and check it: its settings (``load``),
    what this machine must offer it, and its folder's earlier results.

    Compositions are shared by the jobs that pick the same group choices (a sweep over
    strategy × sparsity × seed composes twice, not sixty times); each job's values are then
    checked as typed and applied the way Hydra applies them.
    """
    hydra_lines = [o.input_line for o in overrides if o.is_hydra_override()]
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3", job_name="prunelab"):
        # The values of the jobs are checked one by one below, typed, before they are applied:
        # the master config (the sweep's parameters, its launcher) needs only the choices.
        choices = [o.input_line for o in overrides if not o.is_sweep_override()
                   and (is_group(o, conf_dir) or o.is_hydra_override())]  # fmt: skip
        master = compose_or_refuse(choices)
        if multirun:
            jobs = expand_sweep(master, overrides)
            if jobs is None:
                return  # another sweeper: it expands the jobs itself
        else:
            for o in overrides:
                if o.is_sweep_override():
                    raise ConfigError(
                        f"{o.input_line} lists several values: add -m (--multirun) to sweep "
                        "over them, or give one"
                    )
            jobs = [[o.input_line for o in overrides if not o.is_hydra_override()]]
        target = str(OmegaConf.select(master, "hydra.launcher._target_") or "")
        remote = "submitit" in target or target.endswith("SlurmLauncher")
        # a plug-in's config folder must be searched for every job's group choices too
        search = [o.input_line for o in overrides if o.key_or_group == "hydra.searchpath"]
        bases: dict[tuple[str, ...], DictConfig] = {}
        accelerators: set[str] = set()
        for task in jobs:
            job_overrides = parse([*hydra_lines, *task])
            groups = tuple(o.input_line for o in job_overrides if is_group(o, conf_dir))
            if groups not in bases:
                bases[groups] = compose_or_refuse([*search, *groups])
            cfg = copy.deepcopy(bases[groups])
            values = [o for o in job_overrides if not is_group(o, conf_dir)]
            for o in values:
                check_typed(o, cfg)
            try:
                ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
            except (HydraException, OmegaConfBaseException) as e:
                raise ConfigError(f"cannot apply the overrides: {one_line(e)}") from None
            task_overrides = [o for o in job_overrides if not o.is_hydra_override()]
            accelerators.add(check_job_config(cfg, task_overrides, multirun, remote))
        if target.endswith("PrunelabSlurmLauncher"):
            launcher = OmegaConf.to_container(master.hydra.launcher, resolve=False)
            assert isinstance(launcher, dict)
            slurm.check_request(launcher, accelerators)


def compose_or_refuse(overrides: list[str]) -> DictConfig:
    """Hydra's composition of ``overrides`` (with its ``hydra`` node), or one line saying why
    it failed."""
    try:
        return compose("config", overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as e:
        cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e
        raise ConfigError(f"cannot compose the config: {one_line(cause)}") from None


def expand_sweep(master: DictConfig, overrides: list[Override]) -> list[list[str]] | None:
    """The task overrides of every job of a multirun, as Hydra's basic sweeper makes them:
    the preset's ``hydra.sweeper.params`` first, then the command line's; None for another
    sweeper."""
    if OmegaConf.select(master, "hydra.sweeper._target_") not in BASIC_SWEEPERS:
        return None
    params = OmegaConf.select(master, "hydra.sweeper.params") or {}
    lines = [f"{k}={v}" for k, v in params.items()]
    lines += [o.input_line for o in overrides if not o.is_hydra_override()]
    try:
        return BasicSweeper.split_arguments(parse(lines), None)[0]
    except HydraException as e:
        raise ConfigError(f"cannot expand the sweep: {one_line(e)}") from None


def check_typed(o: Override, cfg: DictConfig) -> None:
    """One value override, as the user typed it, against the schema: a key the schema has
    (``+key`` may not add one), and a value of its type, range and choices."""
    key = o.key_or_group
    if o.is_hydra_override() or o.is_delete() or o.is_sweep_override():
        return
    *parents, leaf = key.split(".")
    node: Any = cfg
    for part in parents:
        node = node.get(part) if isinstance(node, DictConfig) else None
    cls = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
    if cls is dict:  # a free mapping (model.args): any key, any value, for your own code
        if leaf not in node and not o.is_add():
            raise ConfigError(f"{key} is a new key of {'.'.join(parents)}: add it with "
                              f"+{o.input_line}")  # fmt: skip
        return
    if parents == ["schedule"] and isinstance(node, DictConfig) and not is_schedule_node(node):
        cls = SCHEDULES.get(str(node.get("name")))  # a plug-in schedule's plain YAML
    if cls is None or not dataclasses.is_dataclass(cls):
        raise unknown_key(key, "prunelab")
    fields = schema_fields(cls)
    if leaf not in fields:
        raise unknown_key(key, cls.__name__)
    value = o.value()
    if isinstance(value, dict) or dataclasses.is_dataclass(fields[leaf].default):
        return  # a whole node: checked after composition, in ``load``
    check_value(key, value, type_hints(cls)[leaf], fields[leaf])


def check_job_config(
    cfg: DictConfig, task_overrides: list[Override], multirun: bool, remote: bool
) -> str:
    """A composed job: its settings, its machine (unless a cluster runs it) and its folder.
    Returns its accelerator (what a cluster must give it)."""
    job_dir = job_folder(cfg, task_overrides, multirun)
    with open_dict(cfg):
        cfg.paths.output_dir = str(job_dir) if job_dir else "."
        del cfg["hydra"]
    job = load(cfg)
    if not remote:
        check_environment(job)
    if job_dir is not None and job_dir.is_dir():
        config = dataclasses.asdict(job)
        check_prior(job_dir, identity(config), config, job.on_mismatch, act=False)
        check_prior_checkpoint(job_dir, identity(config), config, job.on_mismatch)
    return job.trainer.accelerator


def job_folder(cfg: DictConfig, task_overrides: list[Override], multirun: bool) -> Path | None:
    """The folder Hydra will give this job, or None where it cannot be known in advance (a
    time stamp in it: then it is a new folder anyway)."""
    hydra = cfg.hydra
    with open_dict(hydra):
        dirname = hydra.job.config.override_dirname
        hydra.job.override_dirname = get_overrides_dirname(
            overrides=task_overrides,
            exclude_keys=list(dirname.exclude_keys),
            item_sep=dirname.item_sep,
            kv_sep=dirname.kv_sep,
        )
    run_or_sweep = "sweep" if multirun else "run"
    raw = OmegaConf.to_container(hydra[run_or_sweep], resolve=False)
    assert isinstance(raw, dict)
    if any("${now:" in str(v) for v in raw.values()):
        return None
    try:
        if multirun:
            return Path(str(hydra.sweep.dir)) / str(hydra.sweep.subdir)
        return Path(str(hydra.run.dir))
    except OmegaConfBaseException:
        return None


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

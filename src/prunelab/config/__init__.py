"""A job's config: its typed schema (``schema``), every check of it (``checks``, ``argv``,
``launch``) with one error type, ``ConfigError``, and the tree of YAML files (``tree``).

The rest of prunelab sees a job only as a checked ``schema.Config`` (``load``): no module
reads a raw Hydra config or falls back to a default of its own.
"""

from prunelab.config.argv import check_argv, check_writable_dir
from prunelab.config.checks import check_environment, check_sizes, job_method, load
from prunelab.config.launch import (
    MEMBER_KEYS,
    check_max_members,
    check_stack,
    check_workers,
    stack_key,
)
from prunelab.config.schema import Config, register
from prunelab.config.tree import CONF_DIR, groups_help, settings_help, strategy_method
from prunelab.schedules import SCHEDULES, Schedule

register()

__all__ = [
    "CONF_DIR",
    "MEMBER_KEYS",
    "SCHEDULES",
    "Config",
    "Schedule",
    "check_argv",
    "check_environment",
    "check_max_members",
    "check_sizes",
    "check_stack",
    "check_workers",
    "check_writable_dir",
    "groups_help",
    "job_method",
    "load",
    "register",
    "settings_help",
    "stack_key",
    "strategy_method",
]

"""User-facing errors: each carries one line that says what was wrong and how to fix it.

The CLI prints ``error: <message>`` for these and exits non-zero without a traceback; any
other exception is a bug and keeps its traceback.
"""


class PrunelabError(Exception):
    """Base of every error caused by the user's input, config or files."""


class ConfigError(PrunelabError):
    """A config value is unknown, out of range or inconsistent."""


class SlurmError(ConfigError):
    """SLURM is missing, does not answer, or cannot meet a sweep's request."""


class PluginError(ConfigError):
    """A method or dataset name that no registry holds and no import path reaches."""


class DataError(PrunelabError):
    """A dataset is missing, truncated, corrupt or does not match its checksum."""


class TrainingError(PrunelabError):
    """Training went numerically wrong (NaN/Inf loss)."""


class MismatchError(PrunelabError):
    """A job folder holds results or a checkpoint of another config."""

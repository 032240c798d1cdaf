"""A job's data: its dataset, checked against the model, and the loaders of a stack.

Hydra's local launchers run a sweep's jobs in one process, so the dataset is loaded and
normalised once per process (and moved once per device), not once per job.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import torch

from prunelab.config import Config, check_sizes
from prunelab.data import BatchLoader, RawDataset, dataset_summary, load_dataset, make_splits

log = logging.getLogger("prunelab")
DEFAULT_DATA_DIR = "data"  # the schema's paths.data_dir without PRUNELAB_DATA_DIR

# Hydra's local launchers run a sweep's jobs in one process: load and normalise the data once.
cached_dataset = functools.lru_cache(maxsize=2)(load_dataset)
cached_splits = functools.lru_cache(maxsize=2)(make_splits)


def load_data(job: Config) -> RawDataset:
    """``job``'s dataset (loaded once per process), checked against the model's sizes."""
    data_dir = str(job.paths.data_dir)
    explicit = data_dir != DEFAULT_DATA_DIR  # named by the user: no silent fallback
    raw = cached_dataset(job.data.name, data_dir, job.data.download, explicit)
    log.info(dataset_summary(raw))
    check_sizes(list(job.model.sizes), raw.n_features, raw.n_classes, raw.name)
    return raw


def loaders(
    job: Config, raw: RawDataset, device: torch.device, seeds: Sequence[int]
) -> tuple[BatchLoader, dict[str, BatchLoader]]:
    """The training loader of a stack of members seeded ``seeds`` (each with its seed's batch
    order) and the evaluation loaders of ``job``, their tensors on ``device`` (normalised and
    moved once per process and device)."""
    data = job.data
    splits = cached_splits(raw, data.mean, data.std, data.limit, device)
    bs, n = data.eval_batch_size, data.eval_train_limit
    evals = {
        "train": BatchLoader(*(t[:n] for t in splits.train), bs),  # a fixed prefix
        "val": BatchLoader(*splits.val, bs),
        "test": BatchLoader(*splits.test, bs),
    }
    train_loader = BatchLoader(*splits.train, data.batch_size, shuffle=True, seeds=seeds)
    return train_loader, evals

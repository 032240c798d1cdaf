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
from prunelab.config.checks import model_weights
from prunelab.data import (
    DATASETS,
    BatchLoader,
    RawDataset,
    dataset_summary,
    load_dataset,
    make_splits,
)
from prunelab.models import masked_member
from prunelab.nets import MaskedMLP
from prunelab.stack import MaskedNet

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
    if job.model.name == "mlp":
        check_sizes(list(job.model.sizes), raw.n_features, raw.n_classes, raw.name)
    else:
        model_weights(job, sample_shape(job, raw), raw.n_classes)
    return raw


def sample_shape(job: Config, raw: RawDataset) -> tuple[int, ...]:
    """One sample as ``job``'s model takes it: the dataset's image shape (C, H, W), or its
    flat features for a dataset that declares none."""
    return DATASETS.get(job.data.name).sample_shape(raw.n_features)


def new_member(
    job: Config, raw: RawDataset, seed: int, purpose: str = "init"
) -> MaskedMLP | MaskedNet:
    """A fresh member of ``job``'s model for ``raw``, initialised from run ``seed``'s
    stream ``purpose`` (``models.masked_member``): member i of a stack starts exactly where
    the separate run of job i would."""
    m = job.model
    shape = sample_shape(job, raw)
    return masked_member(m.name, shape, raw.n_classes, seed, m.bias, m.args, m.sizes, purpose)


def loaders(
    job: Config, raw: RawDataset, device: torch.device, seeds: Sequence[int]
) -> tuple[BatchLoader, dict[str, BatchLoader]]:
    """The training loader of a stack of members seeded ``seeds`` (each with its seed's batch
    order) and the evaluation loaders of ``job``, their tensors on ``device`` (normalised and
    moved once per process and device)."""
    data = job.data
    mean, std = (tuple(v) if isinstance(v, list) else v for v in (data.mean, data.std))
    splits = cached_splits(raw, mean, std, data.limit, device)
    bs, n = data.eval_batch_size, data.eval_train_limit
    evals = {
        "train": BatchLoader(*(t[:n] for t in splits.train), bs),  # a fixed prefix
        "val": BatchLoader(*splits.val, bs),
        "test": BatchLoader(*splits.test, bs),
    }
    train_loader = BatchLoader(
        *splits.train,
        data.batch_size,
        shuffle=True,
        seeds=seeds,
        **({"image_shape": sample_shape(job, raw), "augment": True} if data.augment else {}),
    )
    return train_loader, evals

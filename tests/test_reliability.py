"""Reliability: bad input gives one clean line and leaves nothing half-written; crashes and
numerical faults never leave a result that parses but is wrong; same seed, same bits.

Run alone with ``pytest -m reliability``; the run ends with "N bad inputs tried, N clean errors".
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from prunelab import data
from prunelab.data import bundled_path, load_bundled, load_dataset
from prunelab.errors import PrunelabError
from prunelab.nets import MaskedMLP
from prunelab.report.__main__ import main as report_main
from prunelab.results import ERROR_FILE, MODEL_FILE, RESULT_FILE
from prunelab.run import run_job

from .conftest import BAD_INPUT_TALLY, run_cli, run_cli_killed_at_result, train_cli
from .test_data import idx_bytes, write_idx_set

pytestmark = pytest.mark.reliability


def assert_clean_line(message: str, expected: str) -> None:
    """One line, naming what was wrong; counted in the suite's tally."""
    assert "\n" not in message.strip(), message
    assert expected in message, message
    assert "Traceback" not in message


def assert_nothing_written(run_dir: Path) -> None:
    assert not (run_dir / RESULT_FILE).exists()
    assert not (run_dir / "metrics.csv").exists()
    assert not (run_dir / MODEL_FILE).exists()


CLI_BAD_INPUTS = [
    (["strategy=magnitude"], "unknown strategy 'magnitude'; choose one of:"),
    (
        ["schedule=cosine"],
        "unknown schedule 'cosine'; choose one of: gradual, imp, init, iterative, lottery, "
        "oneshot, rigl, sensitivity, set",
    ),
    (["data=cifar100"], "unknown data 'cifar100'; choose one of: cifar10, fashion_mnist, mnist"),
    (["sparsity=-0.1"], "sparsity must be in [0, 1), got -0.1"),
    (["sparsity=1.0"], "sparsity must be in [0, 1), got 1.0"),
    (["sparsity=abc"], "sparsity must be a number in [0, 1), got 'abc'"),
    (["sparsity=nan"], "sparsity must be in [0, 1), got nan"),
    (["-m", "sparsity=0.5,0.9,0.5"], "sparsity=0.5,0.9,0.5 lists 0.5 more than once"),
    (["model.sizes=[100,50,10]"], "does not fit mnist (784 inputs, 10 classes); use model.sizes="),
    (["model.sizes=[784,300,100]"], "use model.sizes=[784,300,100,10]"),  # before data loads
    (["schedule.finetune_epochs=-1"], "schedule.finetune_epochs must be a whole number ≥ 0"),
    (
        ["optim.lr_schedule=step"],
        "unknown optim.lr_schedule 'step'; choose one of: cosine, constant",
    ),
    (
        ["schedule=iterative", "schedule.ramp_epochs=0"],
        "schedule.ramp_epochs must be a whole number ≥ 1, got 0",
    ),
    (
        ["strategy.layer_sparsity=[0.9,0.9]"],
        "strategy.layer_sparsity needs one value per pruned layer (4 hidden layers)",
    ),
    (
        ["schedule=lottery", "schedule.epochs=5", "schedule.rewind_epoch=7"],
        "schedule.rewind_epoch=7 must be below schedule.epochs=5",
    ),
    (
        ["float32_matmul_precision=tf32"],
        "unknown float32_matmul_precision 'tf32'; choose one of: highest, high, medium",
    ),
]


@pytest.mark.parametrize(("args", "message"), CLI_BAD_INPUTS)
def test_bad_command_line_input_is_one_clean_line(tmp_path, args, message):
    BAD_INPUT_TALLY["tried"] += 1
    run_dir = tmp_path / "run"
    proc = train_cli(
        *args,
        "data.limit=100",
        f"hydra.run.dir={run_dir}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert_clean_line(proc.stderr, message)
    assert not run_dir.exists(), "refused before Hydra set up a run folder"
    assert not list(tmp_path.rglob(RESULT_FILE))
    BAD_INPUT_TALLY["clean"] += 1


def test_bad_input_to_python_dash_m_is_one_line_and_exit_status_2(tmp_path):
    """The cases above run the command line's entry in-process; this one is the real
    ``python -m prunelab.train`` of a user, a process of its own."""
    BAD_INPUT_TALLY["tried"] += 1
    proc = run_cli("strategy=magnitude", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert_clean_line(line, "error: unknown strategy 'magnitude'; choose one of:")
    assert not (tmp_path / "run").exists()
    BAD_INPUT_TALLY["clean"] += 1


def test_an_output_dir_that_cannot_be_created_is_one_clean_line(tmp_path):
    BAD_INPUT_TALLY["tried"] += 1
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = train_cli(f"hydra.run.dir={blocker / 'run'}", "data.limit=100", cwd=tmp_path)
    assert proc.returncode != 0
    assert_clean_line(proc.stderr, f"{blocker} is a file, not a folder")
    assert blocker.read_text() == "not a folder"
    BAD_INPUT_TALLY["clean"] += 1


def test_more_sweep_workers_than_gpus_is_one_clean_line(tmp_path):
    BAD_INPUT_TALLY["tried"] += 1
    proc = train_cli(
        "-m", "experiment=smoke", "hydra/launcher=local_gpus", "hydra.launcher.n_jobs=4",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
        env={"PRUNELAB_FAKE_GPU_COUNT": "1"},
    )  # fmt: skip
    assert proc.returncode != 0
    assert_clean_line(proc.stderr, "n_jobs=4 but only 1 GPU(s) are visible; use n_jobs ≤ 1")
    assert not list(tmp_path.rglob(RESULT_FILE))
    BAD_INPUT_TALLY["clean"] += 1


def _data_error(fn, expected: str) -> None:
    BAD_INPUT_TALLY["tried"] += 1
    with pytest.raises(PrunelabError) as e:
        fn()
    assert_clean_line(str(e.value), expected)
    BAD_INPUT_TALLY["clean"] += 1


def test_truncated_idx_file(tmp_path, no_system_dirs):
    write_idx_set(tmp_path, gz=False)
    f = tmp_path / "train-labels-idx1-ubyte"
    f.write_bytes(f.read_bytes()[:-3])
    _data_error(lambda: load_dataset("mnist", tmp_path, download_ok=False), "is truncated")


def test_idx_file_with_wrong_magic(tmp_path, no_system_dirs):
    write_idx_set(tmp_path, gz=False)
    f = tmp_path / "train-images-idx3-ubyte"
    f.write_bytes(b"\x00\x00\x0d\x03" + f.read_bytes()[4:])
    _data_error(lambda: load_dataset("mnist", tmp_path, download_ok=False), "bad magic")


def test_bundled_data_with_a_wrong_checksum(tmp_path):
    bad = tmp_path / "mnist.pkl.gz"
    bad.write_bytes(b"\x00" + bundled_path().read_bytes()[1:])
    _data_error(lambda: load_bundled(bad), "has sha256")


def test_empty_data_dir_with_no_network(tmp_path, no_system_dirs, monkeypatch):
    def refuse(*a, **k):
        raise OSError("no route to host")

    monkeypatch.setattr(data.urllib.request, "urlopen", refuse)
    _data_error(
        lambda: load_dataset("fashion_mnist", tmp_path / "empty", download_ok=True),
        "fashion_mnist not found offline",
    )
    assert not list(tmp_path.rglob("*.gz"))


def test_a_gzip_that_is_not_gzip(tmp_path, no_system_dirs):
    write_idx_set(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(idx_bytes(np.zeros((2, 28, 28))))
    _data_error(lambda: load_dataset("mnist", tmp_path, download_ok=False), "cannot read")


def test_report_on_a_dir_with_no_results(tmp_path, capsys):
    BAD_INPUT_TALLY["tried"] += 1
    assert report_main([str(tmp_path)]) == 1
    assert_clean_line(capsys.readouterr().err, "no result.json or error.txt under")
    assert not (tmp_path / "report").exists()
    BAD_INPUT_TALLY["clean"] += 1


def test_report_on_a_missing_dir(tmp_path, capsys):
    BAD_INPUT_TALLY["tried"] += 1
    assert report_main([str(tmp_path / "nope")]) == 1
    assert_clean_line(capsys.readouterr().err, "is not a directory")
    BAD_INPUT_TALLY["clean"] += 1


def test_a_diverging_run_stops_with_a_clear_message_and_is_marked_failed(tmp_path):
    BAD_INPUT_TALLY["tried"] += 1
    run_dir = tmp_path / "run"
    proc = train_cli(
        "optim.lr=1e6", "data.limit=1000", "schedule.epochs=2",
        f"hydra.run.dir={run_dir}", f"paths.cache_dir={tmp_path / 'cache'}", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1
    assert_clean_line(proc.stderr, "training diverged; lower optim.lr (now 1000000.0)")
    assert_nothing_written(run_dir)
    assert (run_dir / ERROR_FILE).read_text().startswith("TrainingError: loss became")
    assert not list((tmp_path / "cache").glob("*/dense.ckpt")), "no dense model cached"
    BAD_INPUT_TALLY["clean"] += 1


def test_sigkill_while_writing_result_json_then_rerun_counts_each_job_once(tmp_path):
    sweep, cache_dir = tmp_path / "sweep", tmp_path / "cache"
    args = [
        "-m", "experiment=smoke", "sparsity=0,0.5",
        f"hydra.sweep.dir={sweep}", f"paths.cache_dir={cache_dir}",
    ]  # fmt: skip
    killed = run_cli_killed_at_result(*args, n=2, when="before")
    assert killed.returncode == -signal.SIGKILL
    done = list(sweep.glob(f"*/{RESULT_FILE}"))
    assert len(done) == 1, "the first job finished; the second died writing its result"
    half = list(sweep.glob("*/.result.json.*.tmp"))
    assert len(half) == 1 and json.loads(half[0].read_text())["status"] == "ok"
    first = done[0].read_bytes()

    again = train_cli(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert done[0].read_bytes() == first
    results = sorted(sweep.glob(f"*/{RESULT_FILE}"))
    assert len(results) == 4
    for path in results:
        assert json.loads(path.read_text())["status"] == "ok"
    assert report_main([str(sweep)], write=lambda _: None) == 0
    summary = pd.read_csv(sweep / "report" / "summary.csv")
    assert len(summary) == 4
    assert not summary.duplicated(["strategy", "sparsity", "seed"]).any()


def test_same_seed_same_config_gives_bit_identical_masks_and_accuracies(make_cfg, tmp_path):
    common = ["data.limit=800", "schedule.epochs=2", "schedule.finetune_epochs=1"]
    common += ["strategy=random_neuron", "sparsity=0.6", "dense_cache=false"]
    a = run_job(make_cfg(*common, f"paths.output_dir={tmp_path / 'a'}"))
    b = run_job(make_cfg(*common, f"paths.output_dir={tmp_path / 'b'}"))
    for key in ("train_acc", "val_acc", "test_acc", "train_loss", "test_loss"):
        assert a[key] == b[key], key
    assert a["figures"] == b["figures"]
    nets = []
    for run in ("a", "b"):
        net = MaskedMLP(a["config"]["model"]["sizes"])
        net.load_state_dict(torch.load(tmp_path / run / MODEL_FILE, weights_only=True))
        nets.append(net)
    for x, y in zip(nets[0].layers, nets[1].layers, strict=True):
        assert torch.equal(x.mask, y.mask) and torch.equal(x.weight, y.weight)


class Crash(Exception):
    """Stands for a kill: raised from inside training at a chosen epoch."""


@pytest.mark.parametrize("dense_cache", [True, False])
def test_a_long_job_killed_mid_training_resumes_from_its_last_checkpoint(
    make_cfg, tmp_path, monkeypatch, dense_cache
):
    from prunelab import callbacks

    common = ["data.limit=600", "schedule.epochs=3", "schedule.finetune_epochs=2",
              "sparsity=0.8", f"dense_cache={dense_cache}"]  # fmt: skip
    straight = run_job(make_cfg(*common, f"paths.output_dir={tmp_path / 'straight'}",
                              f"paths.cache_dir={tmp_path / 'c1'}"))  # fmt: skip
    crash_at = 1 if dense_cache else 3  # in the dense build, or in fine-tuning
    real = callbacks.EpochSummary.on_train_epoch_end

    def dies(self, trainer, pl_module):
        real(self, trainer, pl_module)
        if trainer.current_epoch == crash_at:
            raise Crash

    monkeypatch.setattr(callbacks.EpochSummary, "on_train_epoch_end", dies)
    cfg = make_cfg(
        *common,
        "checkpoint_every_n_epochs=1",
        "checkpoint_max_share=1",
        f"paths.cache_dir={tmp_path / 'c2'}",
    )
    with pytest.raises(Crash):
        run_job(cfg)
    out = Path(cfg.paths.output_dir)
    left = (tmp_path / "c2" if dense_cache else out).rglob("last.ckpt")
    assert len(list(left)) == 1
    assert not (out / RESULT_FILE).exists()

    trained: list[int] = []

    def counts(self, trainer, pl_module):
        trained.append(trainer.current_epoch)
        real(self, trainer, pl_module)

    monkeypatch.setattr(callbacks.EpochSummary, "on_train_epoch_end", counts)
    resumed = run_job(cfg)
    # Only the crashed epoch and those after it are trained again: the dense build resumes from the
    # last.ckpt in its work dir, a job's fine-tuning from the one in its folder. Trained from
    # scratch, the same bits would come out, so the numbers below cannot tell.
    assert trained == list(range(crash_at, 5)), trained
    if not dense_cache:
        assert resumed["resumed_after_epoch"] == crash_at
    for key in ("train_acc", "val_acc", "test_acc", "test_loss"):
        assert resumed[key] == straight[key], key
    curves = pd.read_csv(out / "metrics.csv").dropna(subset=["test/acc"])
    assert curves["epoch"].tolist() == [0, 1, 2, 3, 4], "no epoch lost or repeated"
    assert not list(tmp_path.rglob("last.ckpt")), "checkpoints removed once the result exists"

"""What a run shows while it trains: one line per epoch (``EpochSummary``, which also times
the epochs for the result), and for a single run in a terminal a progress bar
(``EpochBar``) that log lines do not break (``BarSafeStream``)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

log = logging.getLogger("prunelab.callbacks")


class EpochSummary(pl.Callback):
    """One readable line per epoch instead of a progress bar (sweeps write to files).

    One member: its figures. A stack: each figure's range over the members. Also times each
    epoch; ``epoch_times`` (the result's ``epoch_times_s``, and their median ``epoch_time_s``,
    what ``benchmarks/bench_gpu.py`` and ``benchmarks/bench_overhead.py`` compare with a bare
    PyTorch loop) span from one epoch's start to the next one's (or, for the last, to the end
    of training): training, validation, pruning, every callback, the log row, the
    learning-rate step and any checkpoint, which the line printed at the epoch's end cannot
    wait for. The printed seconds are the epoch's up to that line.
    """

    KEYS = ("train/loss", "train/acc", "val/acc", "test/acc", "sparsity/global")

    def __init__(self) -> None:
        super().__init__()
        self.epoch_times: list[float] = []
        self._started: float | None = None

    def _close_epoch(self) -> None:
        if self._started is not None:
            self.epoch_times.append(time.perf_counter() - self._started)
            self._started = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_epoch()
        self._started = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_epoch()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        m = pl_module.figures
        n = len(pl_module.net)
        parts = []
        for key in self.KEYS:
            values = [float(m[k]) for i in range(n) if (k := f"m{i}/{key}") in m]
            if len(values) == 1:
                parts.append(f"{key} {values[0]:.4f}")
            elif values:
                parts.append(f"{key} {min(values):.4f}–{max(values):.4f}")
        members = f"  {n} members" if n > 1 else ""
        # After the figures were read to the host, which waited for the device's work.
        started = self._started if self._started is not None else time.perf_counter()
        seconds = time.perf_counter() - started
        log.info(
            "epoch %d/%d%s  %s  %.2f s",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            members,
            "  ".join(parts),
            seconds,
        )


class EpochBar(TQDMProgressBar):
    """Lightning's progress bar for a single run in a terminal: the epoch, its steps, and the
    last finished epoch's loss and accuracies (member 0's; the module records figures once per
    epoch, so no step waits for the device to update the bar).

    One bar serves the run: none for validation, sanity checks or the final test (each would
    print a bar of its own, "Testing DataLoader 2" after ours). While it is shown, the log
    lines that go to the terminal are written through ``tqdm.write``, which clears the bar,
    prints the line and redraws the bar below it: a log line never starts in the middle of
    the bar's line."""

    KEYS = ("train/loss", "train/acc", "val/acc")

    def __init__(self) -> None:
        super().__init__()
        self._streams: list[tuple[logging.StreamHandler, Any]] = []

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        figures = getattr(pl_module, "figures", {})
        return {k: f"{figures[f'm0/{k}']:.4f}" for k in self.KEYS if f"m0/{k}" in figures}

    def init_sanity_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_validation_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_test_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        for handler in logging.getLogger().handlers:
            terminal = getattr(handler.stream, "isatty", lambda: False)()
            if type(handler) is logging.StreamHandler and terminal:
                self._streams.append((handler, handler.setStream(BarSafeStream(handler.stream))))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for handler, stream in self._streams:
            handler.setStream(stream)
        self._streams.clear()
        super().teardown(trainer, pl_module, stage)


class BarSafeStream:
    """A terminal stream for log lines while a progress bar is shown: each line goes through
    ``tqdm.write`` (bar cleared, line printed, bar redrawn)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        if text.strip("\n"):
            Tqdm.write(text.rstrip("\n"), file=self.stream)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

"""Measure, on the CPU, how far rounding alone moves the configs that ``pytest -m gpu`` runs.

For each case of ``tests/gpu_cases.py`` and seeds 0-2 it trains the config on the CPU in float32
(2 threads: the reference), float32 on 1 thread, float64 and bf16-mixed, and prints |Δ test
accuracy| and the relative |Δ first-epoch train loss| of each against the reference (see that
file for why these stand for a GPU's fp32, TF32 and bf16). The largest go into
``gpu_cases.MEASURED``: of the 1-thread and float64 runs as "fp32", of bf16-mixed as "bf16".

    python scripts/measure_gpu_tolerance.py          # about 5 minutes on 2 cores
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.gpu_cases import CASES, drift, overrides  # noqa: E402

from prunelab.config import CONF_DIR  # noqa: E402
from prunelab.run import run_job  # noqa: E402

# variant: (its precision, its CPU threads)
VARIANTS = {"fp32": ("32-true", 2), "fp32-1thread": ("32-true", 1), "fp64": ("64-true", 2),
            "bf16": ("bf16-mixed", 2)}  # fmt: skip


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    worst = {case: {"fp32": [0.0, 0.0], "bf16": [0.0, 0.0]} for case in CASES}
    print("| case | seed | variant | Δ test acc | Δ loss (rel) |\n|---|---:|---|---:|---:|")
    with (
        tempfile.TemporaryDirectory() as tmp,
        initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"),
    ):
        for case in CASES:
            for seed in (0, 1, 2):
                dirs = {}
                for variant, (precision, threads) in VARIANTS.items():
                    extra = [f"trainer.precision={precision}", f"seed={seed}"]
                    # a cache per variant: the key does not know the thread count
                    extra.append(f"paths.cache_dir={tmp}/cache-{variant}")
                    cfg = compose(config_name="config", overrides=[*overrides(case), *extra])
                    dirs[variant] = Path(tmp) / f"{case}-{seed}-{variant}"
                    with open_dict(cfg):
                        cfg.paths.output_dir = str(dirs[variant])
                    torch.set_num_threads(threads)
                    run_job(cfg)
                for variant in VARIANTS:
                    if variant == "fp32":
                        continue
                    d = drift(dirs["fp32"], dirs[variant])
                    print(f"| {case} | {seed} | {variant} | {d['acc']:.4f} | {d['loss']:.2e} |")
                    w = worst[case]["bf16" if variant == "bf16" else "fp32"]
                    w[:] = [max(w[0], d["acc"]), max(w[1], d["loss"])]
    print("\nMEASURED = {")
    for case, by in worst.items():
        cells = ", ".join(
            f'"{n}": {{"acc": {a:.4f}, "loss": {lo:.1e}}}' for n, (a, lo) in by.items()
        )
        print(f'    "{case}": {{{cells}}},')
    print("}")


if __name__ == "__main__":
    main()

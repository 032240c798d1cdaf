"""Measure, on the CPU, how far rounding alone moves the configs that ``pytest -m gpu`` runs.

For each case of ``tests/gpu_cases.py`` and each seed it trains the config on the CPU in
float32 (2 threads: the reference), float32 on 1 thread, float64 and bf16-mixed, recording the
masks right after every prune (``gpu_cases.record_prunes``, with a float64 twin of the net at
each prune), and prints, against the reference:

- |Δ test accuracy|;
- the relative |Δ mean train loss| of every epoch;
- "masks": the share of the reference's kept weights the variant did not keep, at the worst
  prune event (1 − ``gpu_cases.mask_overlap``): both the selection and the drift of the weights
  that training brought to the prune;
- "selection": the same share between a run's masks and those its float64 twin selects from
  the same weights (1 − ``gpu_cases.twin_overlap``): the selection's rounding alone.

See that file for why these variants stand for a GPU's fp32, TF32 and bf16. The largest over
the seeds (per epoch for the loss) go into ``gpu_cases.MEASURED``: of the 1-thread and
float64 runs as "fp32", of bf16-mixed as "bf16" (a twin's "selection" of every variant of
its group, the reference's counted in "fp32").

    python scripts/measure_gpu_tolerance.py              # seeds 0-2
    python scripts/measure_gpu_tolerance.py --seeds 2    # one more seed, merged by hand

On 2026-11-26 (2 cores shared with a benchmark, torch 2.13.0 CPU) seeds 0-1 took 228 s and
seed 2 took 60 s: about 5 minutes for the table in ``gpu_cases.MEASURED``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.gpu_cases import (  # noqa: E402
    CASES,
    PruneEvent,
    drift,
    mask_overlap,
    overrides,
    record_prunes,
    twin_overlap,
)

from prunelab.config import CONF_DIR  # noqa: E402
from prunelab.run import run_job  # noqa: E402

# variant: (its precision, its CPU threads)
VARIANTS = {"fp32": ("32-true", 2), "fp32-1thread": ("32-true", 1), "fp64": ("64-true", 2),
            "bf16": ("bf16-mixed", 2)}  # fmt: skip


def run_variant(tmp: str, case: str, seed: int, variant: str) -> tuple[Path, list[PruneEvent]]:
    """Train ``case`` with ``seed`` as ``variant``; its job folder and its prune events."""
    precision, threads = VARIANTS[variant]
    extra = [f"trainer.precision={precision}", f"seed={seed}",
             f"paths.cache_dir={tmp}/cache-{variant}"]  # fmt: skip  # the key ignores threads
    cfg = compose(config_name="config", overrides=[*overrides(case), *extra])
    out = Path(tmp) / f"{case}-{seed}-{variant}"
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    torch.set_num_threads(threads)
    with record_prunes(twin=lambda net: net.double()) as events:
        run_job(cfg)
    return out, events


def worse(seen: dict[str, Any], d: dict[str, Any]) -> None:
    """Keep in ``seen`` the larger of each measured difference (per epoch for the loss)."""
    for key, value in d.items():
        if key == "loss":
            old = seen.get(key, [0.0] * len(value))
            seen[key] = [max(x, y) for x, y in zip(old, value, strict=True)]
        else:
            seen[key] = max(seen.get(key, 0.0), value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    worst: dict[str, dict[str, dict[str, Any]]] = {c: {"fp32": {}, "bf16": {}} for c in CASES}
    print("| case | seed | variant | Δ test acc | Δ loss (rel) per epoch | masks | selection |")
    print("|---|---:|---|---:|---|---:|---:|")
    with (
        tempfile.TemporaryDirectory() as tmp,
        initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"),
    ):
        for case in CASES:
            for seed in args.seeds:
                runs = {v: run_variant(tmp, case, seed, v) for v in VARIANTS}
                ref, ref_events = runs["fp32"]
                worse(worst[case]["fp32"], {"selection": 1 - twin_overlap(ref_events)})
                for variant, (out, events) in runs.items():
                    if variant == "fp32":
                        continue
                    d = drift(ref, out)
                    d["masks"] = 1 - mask_overlap(ref_events, events)
                    d["selection"] = 1 - twin_overlap(events)
                    losses = " ".join(f"{x:.1e}" for x in d["loss"])
                    print(f"| {case} | {seed} | {variant} | {d['acc']:.4f} | {losses} "
                          f"| {d['masks']:.2e} | {d['selection']:.2e} |", flush=True)  # fmt: skip
                    worse(worst[case]["bf16" if variant == "bf16" else "fp32"], d)
    print(f"\n{time.perf_counter() - started:.0f} s, seeds {args.seeds}, torch {torch.__version__}")
    print("MEASURED = {")
    for case, by in worst.items():
        print(f'    "{case}": {{')
        for n, w in by.items():
            losses = ", ".join(f"{x:.1e}" for x in w["loss"])
            print(f'        "{n}": {{"acc": {w["acc"]:.4f}, "loss": [{losses}], '
                  f'"masks": {w["masks"]:.3f}, "selection": {w["selection"]:.1e}}},')  # fmt: skip
        print("    },")
    print("}")


if __name__ == "__main__":
    main()

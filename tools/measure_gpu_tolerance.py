"""Measure how far rounding alone moves the configs that ``pytest -m gpu`` runs: on the CPU
with stand-ins for a GPU's arithmetic, or on the GPU itself (``--device cuda``).

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

With ``--device cuda`` the variants are the GPU's own fp32, TF32 and bf16-mixed (TF32 in the
"bf16" group, which bounds it in the tests), each against the same CPU reference, and a GPU
run's "selection" twin is its net moved to the CPU, as in ``pytest -m gpu``.

    python tools/measure_gpu_tolerance.py                  # seeds 0-2, CPU stand-ins
    python tools/measure_gpu_tolerance.py --seeds 2        # one more seed, merged by hand
    python tools/measure_gpu_tolerance.py --device cuda    # on a GPU

On 2026-11-26 (2 cores shared with a benchmark, torch 2.13.0 CPU) seeds 0-1 took 228 s and
seed 2 took 60 s; ``--device cuda`` on one H200 took 76 s. ``gpu_cases.MEASURED`` holds the
larger of the two tables, entry by entry.
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
    REFERENCE_THREADS,
    PruneEvent,
    drift,
    mask_overlap,
    overrides,
    record_prunes,
    twin_overlap,
)

from prunelab.config import CONF_DIR  # noqa: E402
from prunelab.run import run_job  # noqa: E402

# variant: (its overrides, its CPU threads, its group in gpu_cases.MEASURED); "fp32" is the
# reference. On the CPU, rounding in other orders and coarser inputs stand for a GPU's; with
# --device cuda the GPU's own fp32, TF32 and bf16-mixed are measured (TF32 in the bf16 group,
# which bounds it in the tests).
CPU_VARIANTS = {
    "fp32": (("trainer.precision=32-true",), REFERENCE_THREADS, "fp32"),
    "fp32-1thread": (("trainer.precision=32-true",), 1, "fp32"),
    "fp64": (("trainer.precision=64-true",), 2, "fp32"),
    "bf16": (("trainer.precision=bf16-mixed",), 2, "bf16"),
}
CUDA_VARIANTS = {
    "fp32": (("trainer.precision=32-true",), REFERENCE_THREADS, "fp32"),
    "gpu-fp32": (("trainer=gpu",), 2, "fp32"),
    "gpu-tf32": (("trainer=gpu", "float32_matmul_precision=high"), 2, "bf16"),
    "gpu-bf16": (("trainer=gpu", "trainer.precision=bf16-mixed"), 2, "bf16"),
}
Variant = tuple[tuple[str, ...], int, str]


def run_variant(
    tmp: str, case: str, seed: int, name: str, variant: Variant
) -> tuple[Path, list[PruneEvent]]:
    """Train ``case`` with ``seed`` as ``variant``; its job folder and its prune events. A
    CPU run's twin is the float64 net, a GPU run's the same net on the CPU (as in the tests)."""
    extra, threads, _ = variant
    on_gpu = "trainer=gpu" in extra
    extra = (*extra, f"seed={seed}", f"paths.cache_dir={tmp}/cache-{name}")  # key ignores threads
    cfg = compose(config_name="config", overrides=[*overrides(case), *extra])
    out = Path(tmp) / f"{case}-{seed}-{name}"
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    torch.set_num_threads(threads)
    twin = (lambda net: net.cpu()) if on_gpu else (lambda net: net.double())
    try:
        with record_prunes(twin=twin) as events:
            run_job(cfg)
    finally:
        torch.set_float32_matmul_precision("highest")  # TF32 is a process-wide setting
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
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: measure the GPU's own fp32, TF32 and bf16-mixed against "
                        "the CPU's float32 (default: CPU stand-ins only)")  # fmt: skip
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    variants = CUDA_VARIANTS if args.device == "cuda" else CPU_VARIANTS
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    worst: dict[str, dict[str, dict[str, Any]]] = {c: {"fp32": {}, "bf16": {}} for c in CASES}
    print("| case | seed | variant | Δ test acc | Δ loss (rel) per epoch | masks | selection |")
    print("|---|---:|---|---:|---|---:|---:|")
    with (
        tempfile.TemporaryDirectory() as tmp,
        initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"),
    ):
        for seed in args.seeds:  # seed by seed: a run cut short has every case of a seed
            for case in CASES:
                runs = {n: run_variant(tmp, case, seed, n, v) for n, v in variants.items()}
                ref, ref_events = runs["fp32"]
                worse(worst[case]["fp32"], {"selection": 1 - twin_overlap(ref_events)})
                for name, (out, events) in runs.items():
                    if name == "fp32":
                        continue
                    d = drift(ref, out)
                    d["masks"] = 1 - mask_overlap(ref_events, events)
                    d["selection"] = 1 - twin_overlap(events)
                    losses = " ".join(f"{x:.1e}" for x in d["loss"])
                    print(f"| {case} | {seed} | {name} | {d['acc']:.4f} | {losses} "
                          f"| {d['masks']:.2e} | {d['selection']:.2e} |", flush=True)  # fmt: skip
                    worse(worst[case][variants[name][2]], d)
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU only"
    print(f"\n{time.perf_counter() - started:.0f} s, seeds {args.seeds}, torch "
          f"{torch.__version__}, {device}")  # fmt: skip
    print("MEASURED = {")
    for case, by in worst.items():
        print(f'    "{case}": {{')
        for n, w in by.items():
            if "loss" not in w:  # no variant of this group ran (only the reference's twin)
                continue
            losses = ", ".join(f"{x:.1e}" for x in w["loss"])
            print(f'        "{n}": {{"acc": {w["acc"]:.4f}, "loss": [{losses}], '
                  f'"masks": {w["masks"]:.3f}, "selection": {w["selection"]:.1e}}},')  # fmt: skip
        print("    },")
    print("}")


if __name__ == "__main__":
    main()

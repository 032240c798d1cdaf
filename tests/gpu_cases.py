"""The configs ``pytest -m gpu`` runs on both the GPU and the CPU, and how far apart the two
may end up. Shared with ``scripts/measure_gpu_tolerance.py``, which measured the tolerances.

A GPU sums in other orders than a CPU (other GEMM kernels, split-K, TF32 or bf16 inputs when
asked), so the same config drifts apart over training; what must hold is that the drift stays
within what rounding alone explains. Without a GPU that drift was measured on the CPU with the
same configs, seeds 0-2, against float32 (2026-11-25, 2 cores, torch 2.13.0):

- float32 on 1 thread vs 2 threads (other GEMM blockings, so other summation orders) and
  float64 vs float32 stand for fp32 rounding in other orders (the GPU's fp32);
- bf16-mixed vs float32 for coarser matmul inputs: bf16 keeps 8 mantissa bits, TF32 10, so
  it bounds TF32 too.

Each tolerance is 3× the largest difference measured (``TOLERANCE_FACTOR``), and at least 5
test images (0.001 of the 5000 of ``data.limit=5000``): ``scripts/measure_gpu_tolerance.py``
prints the table. The first real GPU run (``scripts/gpu_check.sh``) checks them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

COMMON = ("data.limit=5000", "data.batch_size=128", "inference_batch_size=null",
          "save_model=false")  # fmt: skip
ONESHOT = ("schedule.epochs=3",)
FINETUNE = ("schedule.epochs=2", "schedule.finetune_epochs=1")
ITERATIVE = ("schedule=iterative", "schedule.epochs=0", "schedule.ramp_epochs=3")
# name: (schedule, strategy, k). The three fine-tune cases are also one stack's members.
CASES = {
    "oneshot-from-cache": (ONESHOT, "weight", 0.9),
    "finetune": (FINETUNE, "neuron", 0.5),
    "finetune-weight": (FINETUNE, "weight", 0.5),
    "finetune-random": (FINETUNE, "random_neuron", 0.5),
    "iterative": (ITERATIVE, "weight", 0.7),
}
NUMERICS = {  # how each precision is asked for, on the GPU
    "fp32": (),
    "tf32": ("float32_matmul_precision=high",),
    "bf16": ("trainer.precision=bf16-mixed",),
}
TOLERANCE_FACTOR = 3
MIN_ACC_TOLERANCE = 0.001
# Printed by scripts/measure_gpu_tolerance.py: per case, the largest |Δ test accuracy| and
# |Δ first-epoch train loss| / loss over seeds 0-2, of float32 on 1 thread and float64 ("fp32")
# and of bf16-mixed ("bf16") against float32 on 2 threads; before the factor.
MEASURED = {
    "oneshot-from-cache": {"fp32": {"acc": 0.0008, "loss": 1.4e-4},
                           "bf16": {"acc": 0.0108, "loss": 4.9e-3}},
    "finetune": {"fp32": {"acc": 0.0056, "loss": 1.4e-4},
                 "bf16": {"acc": 0.0166, "loss": 4.9e-3}},
    "finetune-weight": {"fp32": {"acc": 0.0020, "loss": 1.4e-4},
                        "bf16": {"acc": 0.0052, "loss": 4.9e-3}},
    "finetune-random": {"fp32": {"acc": 0.0032, "loss": 1.4e-4},
                        "bf16": {"acc": 0.0088, "loss": 4.9e-3}},
    # iterative pruning recomputes masks every epoch, so rounding flips a few marginal weights
    # each time and the runs drift furthest apart
    "iterative": {"fp32": {"acc": 0.0270, "loss": 1.4e-4},
                  "bf16": {"acc": 0.0420, "loss": 4.9e-3}},
}  # fmt: skip


def overrides(case: str) -> list[str]:
    """The config overrides of ``case`` (device and numerics not included)."""
    schedule, strategy, k = CASES[case]
    return [*COMMON, *schedule, f"strategy={strategy}", f"sparsity={k}"]


def tolerance(case: str, numerics: str) -> dict[str, float]:
    """How far a GPU run of ``case`` with ``numerics`` may be from the CPU's float32 run."""
    measured = MEASURED[case]["fp32" if numerics == "fp32" else "bf16"]  # bf16 bounds TF32
    return {
        "acc": max(TOLERANCE_FACTOR * measured["acc"], MIN_ACC_TOLERANCE),
        "loss": TOLERANCE_FACTOR * measured["loss"],
    }


def first_train_loss(job_dir: Path) -> float:
    """The mean training loss of the first epoch, from the job's ``metrics.csv``."""
    rows = pd.read_csv(job_dir / "metrics.csv").dropna(subset=["train/loss"])
    return float(rows.sort_values("epoch")["train/loss"].iloc[0])


def drift(reference: Path, other: Path) -> dict[str, float]:
    """|Δ test accuracy| and relative |Δ first-epoch train loss| between two finished jobs."""
    a, b = (json.loads((p / "result.json").read_text()) for p in (reference, other))
    la, lb = first_train_loss(reference), first_train_loss(other)
    return {"acc": abs(a["test_acc"] - b["test_acc"]), "loss": abs(la - lb) / la}

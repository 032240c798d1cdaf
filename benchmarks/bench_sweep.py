"""What the dense cache buys: the 20-config challenge sweep vs one dense training.

Runs, back to back in one invocation and each in a fresh process and fresh folders:

1. one run of the challenge config without the dense cache (dense training + prune + evaluate);
2. the challenge sweep for one seed (2 strategies × 10 sparsities) with an empty dense cache.

and prints sweep / single. Goal: ≤ 1.15 (it was ≤ 1.3), i.e. the sweep costs one dense
training plus a little per pruned config, not twenty trainings. The little has a floor: each
pruned config evaluates its model on 30 000 images (train subset, val, test), about 0.75 s of
matrix products for a weight-pruned challenge MLP on a 2-core CPU.

    python benchmarks/bench_sweep.py                # the challenge's 10 dense epochs
    python benchmarks/bench_sweep.py --epochs 3     # quicker look
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> float:
    """Wall seconds of ``cmd``; its output goes to a log next to nothing else."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="dense epochs (default: preset)")
    args = parser.parse_args()
    extra = [f"schedule.epochs={args.epochs}"] if args.epochs else []
    train = [sys.executable, "-m", "prunelab.train", "experiment=challenge", *extra]

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        single = timed(
            [*train, "sparsity=0.9", "seed=0", "dense_cache=false", f"hydra.run.dir={t / 'one'}"]
        )
        sweep = timed(
            [
                train[0], *train[1:3], "-m", *train[3:], "seed=0",
                f"hydra.sweep.dir={t / 'sweep'}", f"paths.cache_dir={t / 'cache'}",
            ]
        )  # fmt: skip
        n = len(list((t / "sweep").glob("*/result.json")))

    print(f"# bench_sweep: challenge preset{' ' + ' '.join(extra) if extra else ''}, CPU")
    print(f"one dense training (1 config, no cache)  {single:7.1f} s")
    print(f"challenge sweep ({n} configs, 1 seed)     {sweep:7.1f} s")
    print(f"ratio sweep / single                     {sweep / single:7.2f}   goal ≤ 1.15")


if __name__ == "__main__":
    main()

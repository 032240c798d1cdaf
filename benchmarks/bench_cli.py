"""How long the command line takes to answer when it trains nothing, side by side with what
importing torch and Lightning costs on the same machine in the same run.

Each command is a fresh process, as a user's is; the commands take turns (round 1 of each,
then round 2, …) so that drift of the machine hits them alike, and each figure is the median
over the rounds:

- ``python -m prunelab.train --help``;
- ``python -m prunelab.train strategy=magnitude`` (a config error: one line, exit 2);
- ``python -m prunelab.train model.sizes=[784,300,100]`` (sizes that do not fit the data,
  refused before any data loads);
- for scale: ``python -c "import torch"`` and ``python -c "import pytorch_lightning"``, what
  the answers above no longer import.

    python benchmarks/bench_cli.py              # 5 rounds
    python benchmarks/bench_cli.py --rounds 9

Goal: every answer of the command line ≤ 1 s (2-core CPU). The last line is ``worst <s>``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "--help": ["-m", "prunelab.train", "--help"],
    "config error": ["-m", "prunelab.train", "strategy=magnitude"],
    "sizes error": ["-m", "prunelab.train", "model.sizes=[784,300,100]"],
}
REFERENCES = {
    "import torch": ["-c", "import torch"],
    "import pytorch_lightning": ["-c", "import pytorch_lightning"],
}
GOAL_S = 1.0


def seconds(args: list[str], cwd: Path) -> float:
    """Wall seconds of ``python ARGS`` as a new process, run from ``cwd``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each command (≥ 1)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    every = {**COMMANDS, **REFERENCES}
    times: dict[str, list[float]] = {name: [] for name in every}
    with tempfile.TemporaryDirectory() as cwd:  # nothing a run might write lands here
        for _ in range(args.rounds):
            for name, command in every.items():
                times[name].append(seconds(command, Path(cwd)))
    print(f"# median wall seconds over {args.rounds} rounds, each a new process")
    for name, ts in times.items():
        print(f"{name:28s} {statistics.median(ts):6.2f} s   (min {min(ts):.2f}, max {max(ts):.2f})")
    worst = max(statistics.median(times[name]) for name in COMMANDS)
    print(f"goal: every answer ≤ {GOAL_S:g} s")
    print(f"worst {worst:.2f}")


if __name__ == "__main__":
    main()

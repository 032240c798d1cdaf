"""The verdicts of ``tools/gpu_check.sh`` that an exit status cannot give: did the GPU
tests run, and did the sweeps run on CUDA? A pass must not be read from absence.

``pytest -m gpu`` exits 0 when every GPU test was skipped (CUDA unseen by the tests, a
skipif gone wrong), and a sweep exits 0 when its jobs trained on the CPU (an accelerator
that fell back, a config that asked for the wrong one). So the check reads what ran: the
counts in pytest's summary line, and the ``numerics.device`` each job recorded in its
``result.json`` (what the run used, not what its config asked for).

    python tools/gpu_check_verdict.py pytest OUTDIR/pytest_gpu.txt [--dry-run]
    python tools/gpu_check_verdict.py cuda SWEEP_DIR [--dry-run]

Prints the table cell ("pass", "FAIL (why)", or in a dry run "dry run: n/a (why)") and exits
1 on a failure. ``--dry-run`` (``GPU_CHECK_TRAINER=cpu``) still runs every check but only
reports a finding that a CPU run must give (tests skipped, jobs on the CPU); a finding of
broken plumbing (no summary, no result) fails a dry run too.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

RESULT_FILE = "result.json"  # prunelab.results.RESULT_FILE, without importing torch
# pytest's last line: "19 passed, 452 deselected, 13 warnings in 61.80s (0:01:01)", or
# "no tests ran in 0.51s"; with or without its "=" rule.
SUMMARY = re.compile(r"^=*\s*(?P<counts>.*?)\s+in\s+[\d.]+s\b")
COUNT = re.compile(r"(\d+) ([a-z]+)")


class Finding(NamedTuple):
    """Why a check does not pass; ``needs_gpu``: a CPU dry run gives it by design."""

    why: str
    needs_gpu: bool


def pytest_counts(output: str) -> dict[str, int] | None:
    """The counts of pytest's final summary line ({"passed": 19, "skipped": 2, …}; plurals
    folded: "error" → "errors"), or None when ``output`` has no summary line."""
    for line in reversed(output.strip().splitlines()):
        match = SUMMARY.match(line.strip())
        if match:
            counts = {}
            for n, what in COUNT.findall(match["counts"]):
                key = {"error": "errors", "warning": "warnings"}.get(what, what)
                counts[key] = int(n)
            return counts
    return None


def check_pytest(output: str) -> Finding | None:
    """Every GPU test selected ran and passed: some passed, none skipped, failed or errored.

    Any skip fails, not only "all skipped": every ``gpu`` test's only skip condition is
    that CUDA is missing, so on a GPU machine one skipped test means CUDA went unseen."""
    counts = pytest_counts(output)
    if counts is None:
        return Finding("no pytest summary line in its output", needs_gpu=False)
    passed, skipped = counts.get("passed", 0), counts.get("skipped", 0)
    bad = counts.get("failed", 0) + counts.get("errors", 0)
    said = ", ".join(f"{n} {what}" for what, n in counts.items() if what != "warnings")
    if bad:
        return Finding(f"GPU tests failed or errored: {said}", needs_gpu=False)
    if passed == 0 and skipped:
        return Finding(f"every GPU test was skipped: {said}", needs_gpu=True)
    if passed == 0:
        return Finding(f"no GPU test ran: {said or 'nothing collected'}", needs_gpu=False)
    if skipped:
        return Finding(f"{skipped} of {passed + skipped} GPU tests were skipped", needs_gpu=True)
    return None


def check_cuda(sweep: Path) -> Finding | None:
    """Every job of ``sweep`` finished and recorded a CUDA device in its ``numerics``."""
    results = sorted(sweep.rglob(RESULT_FILE))
    if not results:
        return Finding(f"no {RESULT_FILE} under {sweep}", needs_gpu=False)
    devices: Counter[str] = Counter()
    for path in results:
        try:
            devices[str(json.loads(path.read_text())["numerics"]["device"])] += 1
        except (OSError, ValueError, KeyError, TypeError) as e:
            return Finding(f"{path} records no numerics.device ({e!r})", needs_gpu=False)
    off = {device: n for device, n in devices.items() if not device.startswith("cuda")}
    if off:
        where = ", ".join(f"{n} on {device}" for device, n in sorted(off.items()))
        return Finding(f"{sum(off.values())} of {len(results)} jobs ran off CUDA: {where}", True)
    return None


def cell(finding: Finding | None, dry_run: bool) -> tuple[str, bool]:
    """The table cell of a check and whether it failed: a dry run reports, and does not fail
    on, what a CPU must find."""
    if finding is None:
        return "pass", False
    if dry_run and finding.needs_gpu:
        return f"dry run: n/a ({finding.why})", False
    return f"FAIL ({finding.why})", True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=["pytest", "cuda"])
    parser.add_argument("path", type=Path, help="pytest's saved output, or a sweep folder")
    parser.add_argument("--dry-run", action="store_true", help="GPU_CHECK_TRAINER=cpu")
    args = parser.parse_args(argv)
    if args.check == "pytest":
        try:
            finding = check_pytest(args.path.read_text(errors="replace"))
        except OSError as e:
            finding = Finding(f"cannot read pytest's output: {e}", needs_gpu=False)
    else:
        finding = check_cuda(args.path)
    text, failed = cell(finding, args.dry_run)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

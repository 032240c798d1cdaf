"""A committed table is reproduced by its command: seed 0 of the challenge (`make challenge`),
trained again from nothing, gives the rows k = 0 and 50 of the seed-by-seed table in
docs/results/weight-vs-unit.md. The rest of the studies take from half an hour to hours on
two cores; this one costs one dense model (about 45 s)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from .conftest import ROOT, train_cli

PAGE = ROOT / "docs" / "results" / "weight-vs-unit.md"
SECTION = "### Seed by seed"
# The spread of one seed's number across numeric settings (1 vs 2 threads, CPU vs GPU; the
# challenge table's columns): how far another machine may land from the committed digits.
TOLERANCE = {"weight": 0.5, "neuron": 3.0}


def committed() -> tuple[str, dict[tuple[str, float], float]]:
    """The numeric environment the seed-by-seed table names, and its seed-0 cells (strategy,
    k) → test accuracy %."""
    text = PAGE.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    [env] = re.findall(r"Numeric environment: `([^`]+)`", text)
    cells = {}
    for k, weight, unit in re.findall(r"^\| (\d+) \| ([\d.]+) \| [\d.]+ \| [\d.]+ \| ([\d.]+) \|",
                                      text, flags=re.M):  # fmt: skip
        cells[("weight", int(k) / 100)] = float(weight)
        cells[("neuron", int(k) / 100)] = float(unit)
    return env, cells


def environment(numerics: dict) -> str:
    """A result's numeric environment, written as the table writes it."""
    return f"{numerics['device']} {numerics['device_name']}, torch {numerics['torch_version']}, " \
        f"{numerics['threads']} threads"  # fmt: skip


@pytest.fixture
def two_threads():
    """The committed table's thread count, whatever the machine's default."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_the_challenge_reproduces_its_committed_seed_0(tmp_path, two_threads):
    env, cells = committed()
    ran = train_cli("-m", "experiment=challenge", "seed=0", "sparsity=0,0.5",
                    f"hydra.sweep.dir={tmp_path / 'challenge'}", cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in (tmp_path / "challenge").glob("*/result.json")]
    assert len(results) == 4
    exact = {environment(r["numerics"]) for r in results} == {env}
    for r in results:
        key = (r["strategy"], r["sparsity"])
        got = round(100 * r["test_acc"], 2)
        if exact:  # the same arithmetic: the same digits
            assert got == cells[key], (key, got, cells[key])
        else:
            assert abs(got - cells[key]) <= TOLERANCE[key[0]], (key, got, cells[key], env)

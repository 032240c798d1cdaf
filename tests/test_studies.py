"""The studies (``studies/<question>/``), kept apart from the library: each is whole (its
run.sh, its tables.py, its presets or the reason it has none, its make target), every arm of
every run.sh composes through prunelab's own check with the study's presets on Hydra's search
path, the presets stay out of the wheel, and whatever ran before the move says its new name
in one line."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from prunelab.config import check_argv
from prunelab.config.argv import MOVED_PRESETS
from prunelab.errors import ConfigError

from .conftest import ROOT, study_presets, study_searchpath, train_cli

STUDIES = sorted(p.name for p in (ROOT / "studies").iterdir() if p.is_dir())
# the studies with no presets of their own, and why
NO_PRESETS = {
    "dense_phase": "it varies experiment=challenge on the command line",
    "snip_reference": "plain PyTorch (snip_reference.py), no Hydra",
}
LIBRARY_PRESETS = ["challenge", "seed_full", "seed_iterative", "sensitivity", "smoke"]
OLD_TARGETS = {
    "recipes": "make dense-phase",
    "probes": "studies/finetune/run.sh",
    "results": "make weight-vs-unit",
    "results2": "make papers",
    "results3": "make init",
    "results4": "make sparse-training",
    "results5": "make papers",
}
RECORDER = '#!/usr/bin/env bash\n{ printf "%q " "$@"; echo; } >> "$RECORD"\n'


def test_each_study_is_whole_and_has_its_make_target():
    assert sorted(
        ["dense_phase", "weight_vs_unit", "finetune", "papers", "init", "snip_reference",
         "unit_criteria", "allocation", "sparse_training", "lottery", "sensitivity"]
    ) == STUDIES  # fmt: skip
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "studies" / "README.md").read_text()
    for study in STUDIES:
        folder = ROOT / "studies" / study
        assert (folder / "run.sh").is_file() and (folder / "tables.py").is_file(), study
        assert (folder / "conf" / "experiment").is_dir() == (study not in NO_PRESETS), study
        target = study.replace("_", "-")
        rule = rf"^{target}: install\n\tPY=\$\(PY\) bash studies/{study}/run.sh\n"
        assert re.search(rule, makefile, flags=re.M), target
        assert f"`make {target}`" in readme and f"studies/{study}/tables.py" in readme


def test_the_moved_preset_names_are_exactly_the_studies_presets():
    assert study_presets() == MOVED_PRESETS


def test_the_wheel_ships_prunelab_s_own_presets_and_no_study_s():
    """pyproject maps conf/ (and only it) to prunelab.conf; what it ships of experiment/ is
    what conf/experiment holds: the challenge, the smoke test and the seed's protocol."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    setuptools = pyproject.split("[tool.setuptools]", 1)[1].split("\n[tool.pytest", 1)[0]
    assert '"prunelab.conf" = "conf"' in setuptools and "studies" not in setuptools
    assert sorted(p.stem for p in (ROOT / "conf" / "experiment").iterdir()) == LIBRARY_PRESETS


@pytest.mark.parametrize("name", ["init_lenet300", "lenet5_dst"])
def test_a_moved_preset_is_refused_in_one_line_naming_its_study(name):
    study = MOVED_PRESETS[name]
    with pytest.raises(ConfigError) as e:
        check_argv(["-m", f"experiment=challenge,{name}"])
    assert str(e.value) == (
        f"experiment={name} is a study preset now: studies/{study}/conf/experiment/{name}.yaml;"
        f" run bash studies/{study}/run.sh, or add hydra.searchpath=[file://studies/{study}/conf]"
    )


def test_the_command_line_says_where_a_preset_went_before_hydra_starts(tmp_path):
    proc = train_cli("experiment=unit_criteria", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert "studies/unit_criteria/run.sh" in line


def test_the_search_path_the_message_names_works_from_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    check_argv(["experiment=init_lenet300", "hydra.searchpath=[file://studies/init/conf]",
                f"hydra.run.dir={tmp_path}", "schedule.epochs=1"])  # fmt: skip


@pytest.mark.parametrize("study", STUDIES)
def test_every_arm_of_the_study_composes_as_its_run_sh_writes_it(study, tmp_path):
    """run.sh with a stand-in for Python that records each command: every sweep it starts
    (every arm, the extra override passed on) passes prunelab's own check of the command
    line, which composes every job with the study's presets on the search path."""
    fake = tmp_path / "python"
    fake.write_text(RECORDER)
    fake.chmod(0o755)
    record = tmp_path / "calls"
    env = {**os.environ, "PY": str(fake), "RECORD": str(record), "OUT": str(tmp_path / "out")}
    proc = subprocess.run(["bash", str(ROOT / "studies" / study / "run.sh"), "trainer=cpu"],
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    calls = [shlex.split(line) for line in record.read_text().splitlines()]
    assert calls[-1][0].endswith(f"studies/{study}/tables.py")  # the tables come last
    trains = [c[2:] for c in calls if c[:2] == ["-m", "prunelab.train"]]
    assert trains or study in NO_PRESETS
    for argv in trains:
        assert "trainer=cpu" in argv
        if study not in NO_PRESETS:
            assert study_searchpath(study).split("[")[1].rstrip("]") in " ".join(argv)
        check_argv(argv)


def test_a_run_sh_refuses_an_unknown_arm_before_any_sweep(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "studies" / "lottery" / "run.sh"), "lotery"],
                          env={**os.environ, "PY": "false", "OUT": str(tmp_path)},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "unknown arm lotery; the arms of lottery: lottery_lenet300 imp_lenet300"
    )


@pytest.mark.parametrize("target", sorted(OLD_TARGETS))
def test_an_old_make_target_names_the_new_ones_in_one_line(target):
    proc = subprocess.run(["make", "-s", target], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode != 0 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert OLD_TARGETS[target] in line


def test_the_old_script_paths_say_the_new_one_and_run_it():
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    moved, usage = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "tools/gpu_check.sh now" in moved
    assert usage == "usage: tools/gpu_check.sh OUTDIR"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_train.py"), "--help"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "usage: bench_train.py" in proc.stdout
    assert (
        proc.stderr.strip()
        .splitlines()[0]
        .startswith("scripts/bench_train.py is benchmarks/bench_train.py now")
    )


def test_every_old_script_path_keeps_a_stub_that_names_the_new_one():
    """Every file scripts/ held before the move (bar sweep.sh, only ever sourced by the
    drivers) is a stub: a moved script names and runs its new file; a round's driver or tables
    script, split among the studies, names them in one line and stops."""
    old = {"bench_cli", "bench_gpu", "bench_overhead", "bench_sparse", "bench_stack_conv",
           "bench_sweep", "bench_train", "explore_unit_criteria", "gpu_check_verdict",
           "measure_gpu_tolerance", "results2_tables", "results3_tables", "results4_tables",
           "results5_tables", "results_tables", "snip_reference", "gpu_check", "run_probes",
           "run_recipes", "run_results", "run_results2", "run_results3", "run_results4",
           "run_results5", "run_snip_reference", "slurm_cluster"}  # fmt: skip
    stubs = {p.stem: p for p in (ROOT / "scripts").iterdir() if p.suffix in {".py", ".sh"}}
    assert set(stubs) == old
    for stub in stubs.values():
        text = stub.read_text()
        assert "later release" in text, stub
        named = re.findall(r"(?:tools|benchmarks|studies)/[\w/]+\.(?:py|sh)", text)
        assert named and all((ROOT / n).is_file() for n in named), stub


@pytest.mark.parametrize("name", ["run_results5.sh", "results3_tables.py"])
def test_a_split_round_names_its_studies_in_one_line(name):
    interpreter = ["bash"] if name.endswith(".sh") else [sys.executable]
    proc = subprocess.run([*interpreter, str(ROOT / "scripts" / name)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    [line] = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and line.startswith(f"scripts/{name} is split into studies/")
    assert "studies/" in line.split("now:", 1)[1]


def test_lint_covers_the_studies_benchmarks_tools_and_examples_and_nothing_edits_sys_path():
    makefile = (ROOT / "Makefile").read_text()
    for check in ("ruff check", "ruff format --check"):
        paths = "src tests studies benchmarks tools scripts docs/examples examples"
        assert f"{check} {paths}\n" in makefile
    sources = [*ROOT.glob("studies/**/*.py"), *ROOT.glob("benchmarks/*.py"),
               *ROOT.glob("src/**/*.py")]  # fmt: skip
    assert [p for p in sources if "sys.path.insert" in Path(p).read_text()] == []

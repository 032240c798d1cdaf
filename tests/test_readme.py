"""The front page and the handbook cannot drift from the code: the README stays a front page
(short, every link and image there), its table of what is inside is the registries' own
list, and every command block marked runnable in the README or under docs/ runs."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from prunelab.config import CONF_DIR

from .conftest import ROOT, train_cli

README = ROOT / "README.md"
MAX_README_LINES = 250
# A fenced block right after this comment is run by test_runnable_blocks_run; the words after
# the colon are appended to each of its `python -m prunelab.train` commands (data.limit, …) so
# that a long command runs in seconds and still goes through every layer it names.
RUNNABLE = re.compile(r"<!-- runnable(?::(?P<extra>[^>]*))? -->\n```\w*\n(?P<body>.*?)```",
                      re.S)  # fmt: skip


@dataclass(frozen=True)
class Block:
    """One runnable block: the page it is on, its commands, and what each train gets added."""

    page: Path
    commands: tuple[str, ...]
    extra: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.commands[0][:60]}"


def pages() -> list[Path]:
    """The README and every page of the handbook."""
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def commands(body: str) -> tuple[str, ...]:
    """The commands of a shell block: continuation lines joined, comments and blanks dropped."""
    joined = body.replace("\\\n", " ")
    lines = (line.split(" #", 1)[0].strip() for line in joined.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def runnable_blocks() -> list[Block]:
    """Every block marked runnable on every page."""
    return [
        Block(page, commands(m["body"]), tuple(shlex.split(m["extra"] or "")))
        for page in pages()
        for m in RUNNABLE.finditer(page.read_text())
    ]


def report_cli(*args: str, cwd: Path) -> tuple[int, str]:
    """``python -m prunelab.report ARGS`` in this process, in ``cwd``."""
    from prunelab.report.__main__ import main

    old, out = Path.cwd(), io.StringIO()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(list(args))
    finally:
        os.chdir(old)
    return code, out.getvalue()


def run_command(command: str, extra: tuple[str, ...], cwd: Path) -> tuple[int, str]:
    """One documented command, as a user would run it from ``cwd``: the trainer and the
    report in this process (each new interpreter costs seconds of imports), anything else
    refused, so that a block marked runnable holds only what this test can run."""
    words = shlex.split(command)
    if words[:3] == ["python", "-m", "prunelab.train"]:
        ran = train_cli(*words[3:], *extra, cwd=cwd)
        return ran.returncode, ran.stdout + ran.stderr
    if words[:3] == ["python", "-m", "prunelab.report"]:
        return report_cli(*words[3:], cwd=cwd)
    raise AssertionError(f"a runnable block may hold prunelab.train/report commands: {command}")


def test_the_readme_is_a_front_page():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:3] == ["## Set-up: two commands", "## First commands",
                            "## The challenge, measured"], headings  # fmt: skip


def test_every_link_and_image_of_the_readme_is_in_the_repository():
    text = README.read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert any(t.endswith(".png") for t in local), "the headline plots are shown inline"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []


def test_the_headline_plots_are_what_make_figures_copies():
    """The README's images come from the challenge's report by one documented command."""
    makefile = (ROOT / "Makefile").read_text()
    [recipe] = re.findall(r"^figures:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
    images = re.findall(r"!\[[^\]]*\]\((docs/img/[^)]+\.png)\)", README.read_text())
    assert len(images) == 2
    assert all(image in recipe for image in images), recipe
    assert "make figures" in README.read_text()


def inside_table() -> dict[str, set[str]]:
    """The README's table of what is inside: kind → the names in its "built in" cell."""
    rows = re.findall(r"^\| ([a-z ]+) \| (.*?) \|", README.read_text(), flags=re.M)
    return {kind: set(re.findall(r"`([^`]+)`", cell)) for kind, cell in rows if "`" in cell}


def registered() -> dict[str, set[str]]:
    """What the registries and the config tree hold, from a fresh interpreter: in this one
    the tests' own plug-ins may have registered names of their own."""
    code = (
        "import prunelab.allocation as a, prunelab.criteria as c, prunelab.models\n"
        "from prunelab.data.spec import DATASETS\n"
        "from prunelab.model_names import MODELS\n"
        "from prunelab.schedules import SCHEDULES\n"
        "for r in (MODELS, DATASETS, c.CRITERIA, a.ALLOCATIONS, SCHEDULES):\n"
        "    print(' '.join(r.names()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()  # fmt: skip
    kinds = ["models", "datasets", "criteria", "allocations", "schedules"]
    found = {kind: set(line.split()) for kind, line in zip(kinds, out, strict=True)}
    found["strategy presets"] = {p.stem for p in (CONF_DIR / "strategy").glob("*.yaml")}
    found["launchers"] = {"basic"} | {p.stem for p in (CONF_DIR / "hydra/launcher").glob("*.yaml")}
    found["loggers"] = {p.stem for p in (CONF_DIR / "logger").glob("*.yaml")}
    return found


def test_the_readme_lists_exactly_what_is_registered():
    assert inside_table() == registered()


def test_there_are_runnable_blocks_on_the_front_page():
    assert sum(block.page == README for block in runnable_blocks()) >= 2


@pytest.mark.parametrize("block", runnable_blocks(), ids=str)
def test_runnable_blocks_run(block, tmp_path):
    """Each command of the block, in order, from one fresh folder (a report reads what the
    trains before it wrote), with the block's additions to each train."""
    for command in block.commands:
        code, out = run_command(command, block.extra, tmp_path)
        assert code == 0, f"{command}\n{out[-3000:]}"

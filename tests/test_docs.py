"""The handbook (``docs/``, built by MkDocs from ``mkdocs.yml``): it builds in strict mode,
every page is in the nav, the layout list of ``docs/design.md`` matches the tree, and the
command line page shows the current ``--help`` (that every ``python -m prunelab.train``
command of the handbook composes is tests/test_package.py's, with the README's)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from .conftest import ROOT

DOCS = ROOT / "docs"


def mkdocs_command() -> list[str] | None:
    """MkDocs from this interpreter (``make docs`` installs the ``docs`` extra), else one on
    PATH; None where there is none."""
    if importlib.util.find_spec("mkdocs") is not None:
        return [sys.executable, "-m", "mkdocs"]
    found = shutil.which("mkdocs")
    return [found] if found else None


def nav_pages(nav: list) -> list[str]:
    pages: list[str] = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            pages += nav_pages(value)
        else:
            pages.append(value)
    return pages


def mkdocs_config() -> dict:
    # mkdocs.yml uses no !!python tags, so a safe load reads all of it
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def test_the_site_builds_strictly(tmp_path):
    command = mkdocs_command()
    if command is None:
        pytest.skip("mkdocs is not installed here; `make docs` installs the docs extra and builds")
    proc = subprocess.run(
        [*command, "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "api" / "index.html").is_file()


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page():
    config = mkdocs_config()
    assert config["strict"] is True
    assert config["validation"]["nav"]["omitted_files"] == "warn"
    in_nav = nav_pages(config["nav"])
    assert len(in_nav) == len(set(in_nav)), "a page is in the nav twice"
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert sorted(on_disk - set(in_nav)) == [], "pages missing from mkdocs.yml's nav"
    assert sorted(set(in_nav) - on_disk) == [], "nav entries without a page"


def layout_entries() -> dict[str, str]:
    """The fenced block under ``## Layout`` in docs/design.md: ``path  — description``."""
    text = (DOCS / "design.md").read_text()
    section = text.split("\n## Layout\n", 1)[1]
    block = re.search(r"^```text\n(.*?)^```", section, flags=re.S | re.M)
    assert block, "docs/design.md: no ```text block under ## Layout"
    entries = {}
    for line in block.group(1).splitlines():
        path, sep, description = line.partition(" — ")
        assert sep and path.strip() and description.strip(), f"not `path  — description`: {line!r}"
        entries[path.strip().rstrip("/")] = description.strip()
    return entries


def tracked_top_level_folders() -> set[str]:
    try:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: what is there
        ignored = {"outputs", "data", "site", "build", "dist", "multirun", "lightning_logs"}
        return {p.name for p in ROOT.iterdir() if p.is_dir() and p.name not in ignored
                and (not p.name.startswith(".") or p.name == ".ci")}  # fmt: skip
    return {f.split("/")[0] for f in files if "/" in f}


def test_layout_matches_tree():
    entries = layout_entries()
    missing = [p for p in entries if not (ROOT / p).exists()]
    assert missing == [], f"docs/design.md lists paths that do not exist: {missing}"
    unlisted = sorted(tracked_top_level_folders() - set(entries))
    assert unlisted == [], f"top-level folders missing from docs/design.md's layout: {unlisted}"
    package = ROOT / "src" / "prunelab"
    modules = {
        f"src/prunelab/{p.name}"
        for p in package.iterdir()
        if p.name != "__pycache__" and (p.suffix == ".py" or (p / "__init__.py").is_file())
    }
    assert sorted(modules - set(entries)) == [], "src/prunelab entries missing from the layout"


@pytest.mark.parametrize("module", ["prunelab.train", "prunelab.report"])
def test_the_command_line_page_shows_the_current_help(module):
    """docs/reference/cli.md embeds both commands' ``--help``; when a setting or its help
    changes, paste the new output there (80 columns: ``COLUMNS=80 python -m MODULE --help``)."""
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    page = (DOCS / "reference" / "cli.md").read_text()
    blocks = re.findall(r"^```text\n(.*?)^```", page, flags=re.S | re.M)
    assert proc.stdout in blocks, f"docs/reference/cli.md: `python -m {module} --help` changed"

"""Layering of ``src/``: every import goes down, never up, and never round in a cycle.

Each module sits on a layer; a module may import only modules on lower layers (imports
inside functions count too). So the nets, pruning, schedules, the module and the callbacks
can never reach the command line, and a new module must be placed here to be imported at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

SRC = ROOT / "src"
LAYERS = {
    # foundations: no prunelab imports but the package's version; identities, random streams
    "prunelab": 0, "prunelab.errors": 0, "prunelab.identity": 0, "prunelab.streams": 0,
    # torch, imported when first used (the command line's answers import none of it)
    "prunelab.lazy": 0,
    # named plug-ins (one registry shape for criteria, allocations, schedules, datasets)
    "prunelab.registry": 0.5,
    # the models' names, apart from the models (the command line checks one without torch)
    "prunelab.model_names": 0.55,
    # pure functions and file formats
    "prunelab.pruning": 1, "prunelab.results": 1, "prunelab.logs": 1, "prunelab.functional": 1,
    "prunelab.optimizers": 1,
    # how a model's prunable layers connect (pure data)
    "prunelab.graph": 0.8,
    # what a SLURM cluster offers and holds (its client commands); the process as Lightning
    # sees it (its cluster environment, its quiet)
    "prunelab.slurm": 1, "prunelab.environment": 1,
    # the methods: criteria score, allocations count per layer, selection makes the masks,
    # sparse training moves them
    "prunelab.scoring": 1.4, "prunelab.criteria": 1.5, "prunelab.allocation": 1.6,
    "prunelab.selection": 1.7, "prunelab.dst": 1.8,
    # the schedules: a setting's field (below them and the config schema both); their shared
    # ramps, the interface, one module per family (sparse training's checks its criteria),
    # the registry
    "prunelab.settings": 0.6, "prunelab.schedules.ramps": 1, "prunelab.schedules.base": 1.1,
    "prunelab.schedules.oneshot": 1.2, "prunelab.schedules.gradual": 1.2,
    "prunelab.schedules.iterative": 1.2, "prunelab.schedules.lottery": 1.2,
    "prunelab.schedules.imp": 1.3, "prunelab.schedules.sensitivity": 1.2,
    "prunelab.schedules.sparse_training": 1.55,
    "prunelab.schedules": 1.58,
    # reading a model's layer graph from the model (probe + torch.fx)
    "prunelab.layout": 1.9,
    # data and the networks; data's parts: what a dataset is, its sources (IDX files and the
    # bundle, CIFAR-10's archive), the known ones and the front door, splits, batches
    "prunelab.data.spec": 2, "prunelab.data.sources": 2.01, "prunelab.data.cifar": 2.02,
    "prunelab.data.registry": 2.03, "prunelab.data.splits": 2.01, "prunelab.data.augment": 2,
    "prunelab.data.loader": 2.01, "prunelab.data": 2.04, "prunelab.nets": 2,
    # any model, masked and stacked; the model registry; compaction of any model
    "prunelab.stack": 2.1, "prunelab.models": 2.2, "prunelab.compaction": 2.3,
    # masks installed on a user's own module (no prunelab import); the public API on a
    # user's module (prunelab.prune…), over every method, compaction and export
    "prunelab.masking": 2, "prunelab.api": 3.05,
    # what the nets become for inference; the config: its schema, the tree and --help, every
    # check of a job, the command line's checks, the launch checks, the package's front
    "prunelab.sparse": 3, "prunelab.config.schema": 3, "prunelab.config.tree": 3.1,
    "prunelab.config.values": 3.15, "prunelab.config.checks": 3.2, "prunelab.config.argv": 3.3,
    "prunelab.config.launch": 3.4,
    "prunelab.config": 3.5,
    # the LightningModule; the GPU pool's locks; what IMP's levels are made of (their
    # folders, starts and summary rows); what a sensitivity scan is made of (its members,
    # files, budget rule)
    "prunelab.module": 4, "prunelab.gpus": 4, "prunelab.levels": 4, "prunelab.scans": 4,
    # a job's data and loaders; what a stack of jobs is
    "prunelab.job_data": 4, "prunelab.stacks": 4,
    # the callbacks' concerns: the rewind, drop-and-grow, scoring batches, averaging and the
    # fine-tune guard, what a run shows; prune timing, which asks the schedule and uses them
    "prunelab.callbacks.rewind": 4.5, "prunelab.callbacks.topology": 4.5,
    "prunelab.callbacks.scoring": 4.5, "prunelab.callbacks.training": 4.5,
    "prunelab.callbacks.progress": 4.5, "prunelab.callbacks.pruning": 4.6,
    # the public API's callback for a user's own Trainer (schedules, drop-and-grow)
    "prunelab.lightning": 4.6,
    # what a run is made of: callbacks, resuming, the dense cache; the report reads results:
    # its statistics, reading a sweep, plots, markdown, one report, its command line
    "prunelab.callbacks": 5, "prunelab.resume": 5, "prunelab.cache": 5,
    "prunelab.report.stats": 5, "prunelab.report.read": 5.1, "prunelab.report.plots": 5.1,
    # the plots' parts: what they are called and say, their x axes, the per-epoch lines
    "prunelab.report.names": 5, "prunelab.report.axes": 5.05, "prunelab.report.curves": 5,
    "prunelab.report.levels": 5.1, "prunelab.report.sensitivity": 5.1,
    "prunelab.report.markdown": 5.2, "prunelab.report.make": 5.3, "prunelab.report": 5.4,
    # what the studies' tables share, on top of the report (studies/<question>/tables.py)
    "prunelab.report.studytables": 5.45,
    "prunelab.report.__main__": 5.5,
    # a stack's fit wired (members, callbacks, trainer), where it starts (its checkpoint or
    # the dense cache, built by the same fit), and each member's result written
    "prunelab.wiring": 5.5, "prunelab.start": 5.6, "prunelab.finish": 5.7,
    # the one orchestrator
    "prunelab.run": 6,
    # the workflows above it: IMP's levels, each an ordinary run through the orchestrator;
    # a sensitivity scan, its dense model an ordinary run; where every job starts (one
    # training, or its schedule's workflow)
    "prunelab.imp": 6.5, "prunelab.sensitivity": 6.5, "prunelab.workflows": 6.6,
    # the command line
    "prunelab.train": 7,
    # Hydra's plug-ins: setting up a sweep's jobs; the launchers, which call the orchestrator
    # or submit to SLURM; the sweeper (no prunelab import: the command line checked its jobs)
    "hydra_plugins.prunelab_launcher": 8, "hydra_plugins.prunelab_launcher.jobs": 8,
    "hydra_plugins.prunelab_launcher.stacked_launcher": 8,
    "hydra_plugins.prunelab_launcher.slurm_launcher": 8,
    "hydra_plugins.prunelab_launcher.tracking": 7.5,
    "hydra_plugins.prunelab_launcher.checked_sweeper": 8,
}  # fmt: skip
CLIS = {"prunelab.train", "prunelab.report.__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal_imports(path: Path) -> set[str]:
    """The project modules ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from prunelab import cache` imports the submodule prunelab.cache
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        found |= {n for n in names if n in LAYERS}
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {module_name(p): internal_imports(p) for p in SRC.rglob("*.py")}
    for name, targets in graph.items():  # `from prunelab.x import y` also names prunelab.x.y
        targets.discard(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path a → … → a, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_every_module_of_src_has_a_layer():
    assert sorted(import_graph()) == sorted(LAYERS)


def test_src_has_no_import_cycle():
    assert find_cycle(import_graph()) is None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of ``graph`` that does not go to a strictly lower layer."""
    return [
        f"{a} (layer {LAYERS[a]}) imports {b} (layer {LAYERS[b]})"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if b != "prunelab" and LAYERS[b] >= LAYERS[a]
    ]


def test_every_import_goes_down_a_layer_and_nothing_imports_a_command_line():
    graph = import_graph()
    assert upward_imports(graph) == []
    assert [a for a, targets in graph.items() if targets & CLIS] == []


def test_the_checks_catch_a_cycle_and_an_upward_import():
    graph = {"prunelab.nets": {"prunelab.sparse"}, "prunelab.sparse": {"prunelab.nets"}}
    assert find_cycle(graph) == ["prunelab.nets", "prunelab.sparse", "prunelab.nets"]
    assert upward_imports(graph) == ["prunelab.nets (layer 2) imports prunelab.sparse (layer 3)"]
    assert upward_imports({"prunelab.callbacks": {"prunelab.train"}}) != []


def test_the_command_line_is_thin():
    assert len((SRC / "prunelab" / "train.py").read_text().splitlines()) <= 150

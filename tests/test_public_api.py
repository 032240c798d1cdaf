"""Semantic versioning: every name a release promised (``prunelab.PUBLIC_API`` as it was) is
still there, importable, and takes the keyword arguments it took. A minor release adds a
name here as it adds it to ``PUBLIC_API``; removing one is a major release."""

from __future__ import annotations

import importlib
import inspect

import pytest

import prunelab

# What each release promised: module → name → the parameters of a callable (None otherwise).
RELEASED: dict[str, dict[str, dict[str, list[str] | None]]] = {
    "0.2.0": {
        "prunelab": {
            "LayerSparsity": None,
            "PruningError": None,
            "SparsityReport": None,
            "__version__": None,
            "apply": ["module", "masks"],
            "compact": ["module", "example_inputs"],
            "export": ["module", "target", "example_inputs", "batch_size"],
            "prune": [
                "module",
                "sparsity",
                "criterion",
                "allocation",
                "data",
                "example_inputs",
                "prune_output",
                "shuffle",
                "batches",
                "seed",
            ],
            "remove": ["module"],
            "sparsity_report": ["module", "example_inputs"],
        },
        "prunelab.lightning": {
            "Pruning": [
                "sparsity",
                "criterion",
                "allocation",
                "schedule",
                "module",
                "prune_output",
                "data",
                "batches",
                "batch_to_data",
                "seed",
                "make_permanent",
                "log_figures",
            ],
        },
        "prunelab.criteria": {"CRITERIA": None, "Criterion": None, "ScoreContext": None},
        "prunelab.allocation": {"ALLOCATIONS": None, "Allocation": None, "Counts": None},
        "prunelab.schedules": {"SCHEDULES": None, "Schedule": None, "setting": None},
        "prunelab.data": {"DatasetSpec": None, "RawDataset": None},
        "prunelab.pruning": {"Sparsity": None, "layer_k": ["k", "layer"], "n_to_prune": ["n", "k"]},
        "prunelab.models": {"build": ["name", "image_shape", "classes", "bias", "args"]},
    }
}
PROMISED = [
    (version, module, name, params)
    for version, modules in RELEASED.items()
    for module, names in modules.items()
    for name, params in names.items()
]


@pytest.mark.parametrize(("version", "module", "name", "params"), PROMISED)
def test_a_released_name_is_still_public_and_takes_its_keywords(version, module, name, params):
    assert name in prunelab.PUBLIC_API.get(module, ()), f"{module}.{name} (since {version})"
    obj = getattr(importlib.import_module(module), name)
    if params is not None:
        accepted = inspect.signature(obj).parameters
        assert [p for p in params if p not in accepted] == [], f"{module}.{name}"


def test_the_current_list_is_recorded_as_this_version():
    """A name added to ``PUBLIC_API`` is added to this version's record too (and the
    changelog says so): the record is what the next release is checked against."""
    current = RELEASED[prunelab.__version__]
    assert {m: sorted(names) for m, names in prunelab.PUBLIC_API.items()} == {
        m: sorted(names) for m, names in current.items()
    }


def test_the_top_level_names_are_prunelab_api_and_all_lists_them():
    import prunelab.api

    assert sorted(prunelab.__all__) == sorted(prunelab.PUBLIC_API["prunelab"])
    assert sorted([*prunelab.api.__all__, "__version__"]) == sorted(prunelab.__all__)
    for name in prunelab.__all__:
        if name != "__version__":
            assert getattr(prunelab, name) is getattr(prunelab.api, name)
    with pytest.raises(AttributeError):
        prunelab.no_such_name  # noqa: B018

"""Compaction and export: smaller or sparse forms with the masked model's logits."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
import torch

from prunelab import sparse
from prunelab.config import strategy_method
from prunelab.nets import MaskedMLP
from prunelab.pruning import alive_units
from prunelab.sparse import (
    CSR_MARGIN,
    TARGETS,
    compact,
    export,
    layer_seconds,
    load_export,
    model_seconds,
    save_export,
)

SIZES = [784, 1000, 1000, 500, 200, 10]


@pytest.fixture(scope="module")
def trained_like() -> MaskedMLP:
    torch.manual_seed(0)
    return MaskedMLP(SIZES)


@pytest.mark.parametrize("strategy", ["weight", "neuron"])
@pytest.mark.parametrize("k", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("batch", [1, 64])
def test_compact_model_gives_the_masked_models_logits(trained_like, strategy, k, batch):
    net = MaskedMLP(SIZES)
    net.load_state_dict(trained_like.state_dict())
    net.prune(strategy_method(strategy), k)
    small = compact(net)
    x = torch.randn(batch, 784)
    with torch.no_grad():
        assert torch.allclose(small(x), net(x), atol=1e-5, rtol=1e-5)


def test_compact_keeps_exactly_the_surviving_units(trained_like):
    net = MaskedMLP(SIZES)
    net.load_state_dict(trained_like.state_dict())
    net.prune(strategy_method("neuron"), 0.9)
    small = compact(net)
    assert small.sizes == [784, 100, 100, 50, 20, 10]
    alive = alive_units(net.masks())
    kept_rows = net.layers[1].weight[alive[1]][:, alive[0]]
    assert torch.equal(small.layers[1].weight, kept_rows)


def test_compacting_an_unpruned_model_changes_nothing(trained_like):
    small = compact(trained_like)
    assert small.sizes == SIZES
    for a, b in zip(small.layers, trained_like.layers, strict=True):
        assert torch.equal(a.weight, b.weight) and bool(a.mask.all())


def test_a_layer_with_no_live_unit_gives_constant_zero_logits():
    net = MaskedMLP([6, 4, 3, 2])
    net.layers[1].mask.zero_()
    small = compact(net)
    x = torch.randn(5, 6)
    assert torch.equal(small(x), torch.zeros(5, 2)) and torch.equal(net(x), small(x))


K_GRID = [0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]


def pruned(base: MaskedMLP, strategy: str, k: float) -> MaskedMLP:
    net = MaskedMLP(SIZES)
    net.load_state_dict(base.state_dict())
    net.prune(strategy_method(strategy), k)
    return net


@pytest.mark.parametrize("strategy", ["weight", "neuron"])
@pytest.mark.parametrize("k", K_GRID)
def test_every_export_target_gives_the_masked_logits(trained_like, strategy, k):
    net = pruned(trained_like, strategy, k)
    for batch in (1, 64):
        x = torch.randn(batch, 784)
        with torch.no_grad():
            ref = net(x)
        for target in TARGETS:
            out = export(net, target, batch_size=batch)(x)
            assert out.shape == ref.shape
            assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5), (target, batch)


def test_csr_export_uses_int32_indices_for_pruned_layers_only(trained_like):
    model = export(pruned(trained_like, "weight", 0.9), "csr")
    assert model.kinds == ["csr", "csr", "csr", "csr", "dense"]
    w = model.weights[1]
    assert w.crow_indices().dtype == torch.int32 and w.col_indices().dtype == torch.int32
    assert w.values().numel() == round(0.1 * 1000 * 1000)


def test_auto_picks_csr_for_exactly_the_layers_the_timer_finds_faster(trained_like):
    """``auto`` asks a timer (on a real run: this machine's, ``layer_seconds``) which form of
    each pruned layer is faster; a fake timer makes the choice testable without timing."""
    asked = []

    def csr_fast_below_20_percent(w, batch_size):
        density = float((w != 0).float().mean())
        asked.append(batch_size)
        return {"dense": 1.0, "csr": 0.5 if density < 0.2 else 2.0}

    def sparse_models_fast(model, batch_size):
        return 0.5 if model.any_sparse else 1.0

    timers = {"timer": csr_fast_below_20_percent, "model_timer": sparse_models_fast}
    net = pruned(trained_like, "weight", 0.9)
    assert export(net, "auto", 7, **timers).kinds == ["csr"] * 4 + ["dense"]
    assert asked == [7] * 4, "only pruned layers are timed, at the batch size asked"
    half = pruned(trained_like, "weight", 0.5)
    assert export(half, "auto", **timers).kinds == ["dense"] * 5
    units = pruned(trained_like, "neuron", 0.9)
    compacted = export(units, "auto", **timers)
    assert compacted.sizes == [784, 100, 100, 50, 20, 10] and compacted.kinds == ["dense"] * 5


def test_auto_keeps_its_csr_layers_only_if_the_whole_model_is_faster(trained_like):
    """One CSR layer moves every layer to the (features × batch) layout: layers that are each
    faster as CSR can still make a slower model, so ``auto`` times the mixed model against the
    compact dense one and keeps the faster, at the batch size asked."""
    asked = []

    def csr_always_faster(w, batch_size):
        return {"dense": 1.0, "csr": 0.5}

    def dense_model_faster(model, batch_size):
        asked.append((batch_size, model.any_sparse))
        return 2.0 if model.any_sparse else 1.0

    net = pruned(trained_like, "weight", 0.9)
    model = export(net, "auto", 9, timer=csr_always_faster, model_timer=dense_model_faster)
    assert model.kinds == ["dense"] * 5
    assert sorted(asked) == [(9, False), (9, True)]
    x = torch.randn(9, SIZES[0])
    torch.testing.assert_close(model(x), net(x), rtol=1e-5, atol=1e-5)

    def sparse_slightly_faster(model, batch_size):
        return 0.95 if model.any_sparse else 1.0

    close = export(net, "auto", 9, timer=csr_always_faster, model_timer=sparse_slightly_faster)
    assert close.kinds == ["dense"] * 5, "within the timing noise auto stays dense"
    assert CSR_MARGIN < 0.95


def test_auto_takes_a_csr_layer_only_if_it_is_clearly_faster(trained_like):
    def csr_slightly_faster(w, batch_size):
        return {"dense": 1.0, "csr": 0.95}

    net = pruned(trained_like, "weight", 0.9)
    model = export(net, "auto", 9, timer=csr_slightly_faster, model_timer=lambda m, b: 0.0)
    assert model.kinds == ["dense"] * 5


def test_the_measured_timer_times_both_forms_at_the_batch_size(trained_like, monkeypatch):
    w = pruned(trained_like, "weight", 0.9).layers[1].weight.detach()
    for batch in (1, 16):
        seconds = layer_seconds(w, batch, reps=2)
        assert set(seconds) == {"dense", "csr"} and all(t > 0 for t in seconds.values())
    # What is timed: w's product with a batch of the size asked, once as the dense matrix and
    # once as its CSR copy (positive times alone hold for any product at all).
    products: list[torch.Tensor] = []
    converted: list[torch.Tensor] = []
    monkeypatch.setattr(sparse, "best_seconds", lambda call, reps: products.append(call()) or 1.0)
    real = sparse.to_csr_int32
    monkeypatch.setattr(sparse, "to_csr_int32", lambda t: converted.append(t) or real(t))
    for batch in (1, 16):
        products.clear()
        converted.clear()
        layer_seconds(w, batch, reps=2)
        shape = (w.shape[0],) if batch == 1 else (w.shape[0], batch)  # batch 1: torch.mv
        assert [tuple(p.shape) for p in products] == [shape, shape]
        torch.testing.assert_close(products[1], products[0])  # CSR gives the dense product
        assert len(converted) == 1 and torch.equal(converted[0], w), "the CSR form is w's"


def test_the_measured_model_timer_runs_the_model_at_the_batch_size(trained_like):
    """One warm-up call, then ``reps`` timed ones, each on a batch of the size asked."""
    model = export(pruned(trained_like, "weight", 0.9), "csr")
    shapes = []
    model.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))
    for batch in (1, 16):
        shapes.clear()
        assert model_seconds(model, batch, reps=2) > 0
        assert shapes == [(batch, SIZES[0])] * 3


def test_speedups_are_each_models_time_against_the_dense_models(monkeypatch):
    """``measure_speedups`` reports the dense model's seconds per call and every other
    model's dense time over its own; a fake clock that only the models advance makes the
    figures exact (a real clock would make them this machine's)."""
    now = [0.0]
    monkeypatch.setattr(sparse, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))

    def costing(seconds: float):
        def model(x: torch.Tensor) -> None:
            now[0] += seconds

        return model

    models = {"dense": costing(2.0), "auto": costing(0.5)}
    speedups = sparse.measure_speedups(models, torch.zeros(1, 784), reps=3)
    assert speedups == {"dense": 2.0, "auto": 4.0}


def test_export_of_an_unpruned_model_is_the_dense_model(trained_like):
    model = export(trained_like, "auto", batch_size=1)
    assert model.kinds == ["dense"] * 5 and model.sizes == SIZES
    for w, layer in zip(model.weights, trained_like.layers, strict=True):
        assert torch.equal(w, layer.weight)


@pytest.mark.parametrize("target", ["csr", "auto", "compact"])
def test_exported_model_round_trips_through_a_fresh_process(trained_like, tmp_path, target):
    net = pruned(trained_like, "weight", 0.97)
    model = export(net, target, batch_size=1)
    path = tmp_path / "model.pt"
    save_export(model, path)
    x = torch.randn(3, 784)
    torch.save(x, tmp_path / "x.pt")
    code = (
        "import sys, torch\n"
        "from prunelab.sparse import load_export\n"
        "m = load_export(sys.argv[1])\n"
        "x = torch.load(sys.argv[2], weights_only=True)\n"
        "torch.save(m(x), sys.argv[3])\n"
    )
    out = tmp_path / "y.pt"
    subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "x.pt"), str(out)], check=True
    )
    assert torch.allclose(torch.load(out, weights_only=True), model(x), atol=1e-6)
    assert torch.allclose(load_export(path)(x), net(x).detach(), atol=1e-5)


def test_a_corrupt_csr_export_is_refused_on_load(trained_like, tmp_path):
    state = export(pruned(trained_like, "weight", 0.99), "csr").state()
    state["layers"][0]["col"] = state["layers"][0]["col"] + 5000  # indices past the width
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(RuntimeError):
        load_export(tmp_path / "bad.pt")

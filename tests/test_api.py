"""The public API on modules written here, not prunelab's: ``prunelab.prune``, ``remove``,
``apply``, ``sparsity_report``, ``compact`` and ``export``, cross-checked against
``torch.nn.utils.prune`` where it has the same method."""

from __future__ import annotations

import copy
import io
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as torch_prune

import prunelab
from prunelab.allocation import ALLOCATIONS
from prunelab.criteria import CRITERIA
from prunelab.masking import PrunedConv2d, PrunedLinear


class SmallCNN(nn.Module):
    """A user's CNN with biases: conv → pool → conv → flatten → fc → fc."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.conv2 = nn.Conv2d(6, 8, 3)
        self.fc = nn.Linear(8 * 3 * 3, 24)
        self.head = nn.Linear(24, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        return self.head(F.relu(self.fc(x.flatten(1))))


class ResidualMLP(nn.Module):
    """A unit of ``a`` feeds a sum: it cannot be removed alone."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(12, 12, bias=False)
        self.b = nn.Linear(12, 4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.relu(self.a(x)) + x)


def cnn(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN()


def batch(n: int = 16, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 12, 12, generator=g), torch.randint(0, 5, (n,), generator=g)


HIDDEN = ["conv1.weight", "conv2.weight", "fc.weight"]


def test_prune_masks_the_hidden_layers_and_keeps_state_dict_keys():
    model, (x, _) = cnn(), batch()
    keys = list(model.state_dict())
    masks = prunelab.prune(model, 0.5, example_inputs=x)
    assert list(masks) == HIDDEN  # the output layer is not pruned unless asked
    for name, mask in masks.items():
        n = mask.numel()
        assert int((~mask).sum()) == round(0.5 * n)
        assert bool((model.get_parameter(name)[~mask] == 0).all())
    assert list(model.state_dict()) == keys
    assert isinstance(model.conv1, PrunedConv2d) and isinstance(model.fc, PrunedLinear)
    assert not hasattr(model.head, "weight_mask")


def test_state_dict_loads_strictly_into_the_unpruned_class_with_the_same_outputs():
    model, (x, y) = cnn(), batch()
    prunelab.prune(model, 0.7, "snip", data=(x, y))
    # an optimizer with momentum moves stored weights; the saved state is still the pruned one
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    plain = SmallCNN()
    plain.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    assert torch.equal(plain(x), model(x))


def test_a_pruned_weight_gets_no_gradient_and_stays_out_of_the_output():
    model, (x, y) = cnn(), batch()
    masks = prunelab.prune(model, 0.8, example_inputs=x)
    F.cross_entropy(model(x), y).backward()
    for name, mask in masks.items():
        assert bool((model.get_parameter(name).grad[~mask] == 0).all())
        assert bool((model.get_parameter(name).grad[mask] != 0).any())


def test_magnitude_equals_torch_l1_unstructured_and_unit_l2_equals_ln_structured():
    model, x = cnn(), batch()[0]
    reference = cnn()
    ours = prunelab.prune(model, 0.6, "magnitude", example_inputs=x)
    units = prunelab.prune(cnn(), 0.5, "unit_l2", example_inputs=x)
    for name in HIDDEN:
        layer = reference.get_submodule(name.removesuffix(".weight"))
        torch_prune.l1_unstructured(layer, "weight", amount=0.6)
        assert torch.equal(ours[name], layer.weight_mask.bool())
        torch_prune.remove(layer, "weight")
        fresh = cnn().get_submodule(name.removesuffix(".weight"))
        torch_prune.ln_structured(fresh, "weight", amount=0.5, n=2, dim=0)
        assert torch.equal(units[name], fresh.weight_mask.bool())


def test_global_allocation_equals_torch_global_unstructured():
    model, x = cnn(), batch()[0]
    reference = cnn()
    ours = prunelab.prune(model, 0.75, "magnitude", "global", example_inputs=x)
    params = [(reference.get_submodule(n.removesuffix(".weight")), "weight") for n in HIDDEN]
    torch_prune.global_unstructured(params, torch_prune.L1Unstructured, amount=0.75)
    for name, (layer, _) in zip(HIDDEN, params, strict=True):
        assert torch.equal(ours[name], layer.weight_mask.bool())


@pytest.mark.parametrize("criterion", CRITERIA.names())
def test_every_criterion_is_reachable(criterion):
    model, (x, y) = cnn(), batch()
    masks = prunelab.prune(model, 0.5, criterion, data=(x, y))
    report = prunelab.sparsity_report(model)
    unit = CRITERIA.get(criterion).unit
    for name, mask in masks.items():
        rows = mask.flatten(1)
        if unit:  # whole rows (output channels) go
            assert bool((rows.all(dim=1) | ~rows.any(dim=1)).all())
        assert 0.4 <= 1 - mask.float().mean().item() <= 0.6, name
    assert report.global_sparsity == pytest.approx(0.5, abs=0.1)


@pytest.mark.parametrize("allocation", ALLOCATIONS.names())
def test_every_allocation_is_reachable(allocation):
    model, x = cnn(), batch()[0]
    prunelab.prune(model, 0.8, "magnitude", allocation, example_inputs=x)
    assert prunelab.sparsity_report(model).global_sparsity == pytest.approx(0.8, abs=1e-3)


def test_masks_compose_and_a_mapping_prunes_only_named_layers():
    model, x = cnn(), batch()[0]
    first = prunelab.prune(model, {"fc": 0.5}, example_inputs=x)
    assert list(first) == ["fc.weight"]
    second = prunelab.prune(model, {"fc.weight": 0.8, "conv2": 0.25}, example_inputs=x)
    assert bool((second["fc.weight"] <= first["fc.weight"]).all())  # what was pruned stays
    assert set(second) == {"conv2.weight", "fc.weight"}
    ks = [layer.sparsity for layer in prunelab.sparsity_report(model).layers]
    assert ks == pytest.approx([0.0, 0.25, 0.8, 0.0], abs=1e-3)


def test_remove_folds_the_masks_and_apply_restores_them():
    model, x = cnn(), batch()[0]
    masks = prunelab.prune(model, 0.9, "unit_l2", example_inputs=x)
    out = model(x)
    saved = copy.deepcopy(model.state_dict())
    prunelab.remove(model)
    assert type(model.conv1) is nn.Conv2d and type(model.fc) is nn.Linear
    assert torch.equal(model(x), out)
    other = SmallCNN()
    other.load_state_dict(saved)
    prunelab.apply(other, masks)
    assert torch.equal(other(x), out)
    assert prunelab.sparsity_report(other, x).layers[2].sparsity == pytest.approx(0.9, abs=0.05)


def test_a_unit_pruned_channel_is_removed_with_its_bias_and_compact_keeps_the_logits():
    model, x = cnn(), batch()[0]
    prunelab.prune(model, 0.5, "unit_l2", example_inputs=x)
    small = prunelab.compact(model)
    assert (small.conv1.out_channels, small.conv2.in_channels) == (3, 3)
    assert (small.conv2.out_channels, small.fc.in_features) == (4, 4 * 9)
    assert small.fc.out_features == 12 and small.head.in_features == 12
    assert torch.allclose(small(x), model(x), atol=1e-6)
    assert isinstance(model.conv1, PrunedConv2d)  # the original is left as it was


def test_sparsity_report_counts_dead_units_effective_sparsity_and_flops():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False  # unit 1 of the first layer: dead, so column 1 of the second is useless
    prunelab.apply(model, {"0.weight": mask})
    report = prunelab.sparsity_report(model)
    assert [layer.dead_units for layer in report.layers] == [1, 0]
    assert report.global_sparsity == pytest.approx(4 / 12)
    assert report.effective_sparsity == pytest.approx(4 / 12)  # only layer 0 counts as pruned
    assert (report.params_total, report.params_nonzero, report.params_effective) == (18, 14, 12)
    assert report.flops_dense == 2 * 18 and report.flops_sparse == 2 * 12
    assert "0.weight" in str(report) and report.as_dict()["dead_units/0"] == 1.0


def test_export_to_csr_keeps_the_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 30), nn.ReLU(),
                          nn.Linear(30, 4))  # fmt: skip
    x = torch.randn(8, 20)
    prunelab.prune(model, 0.9)
    exported = prunelab.export(model, "csr")
    assert "csr" in exported.kinds
    assert torch.allclose(exported(x), model(x), atol=1e-5)


def test_float64_modules_keep_their_dtype():
    model, x = cnn().double(), batch()[0].double()
    masks = prunelab.prune(model, 0.5, "synflow", example_inputs=x)
    assert model.conv1.weight.dtype == torch.float64 and masks["fc.weight"].dtype == torch.bool
    assert model(x).dtype == torch.float64


def test_a_linear_subclass_of_the_users_is_pruned_and_fx_still_reads_the_graph():
    class MyLinear(nn.Linear):
        pass

    model = nn.Sequential(MyLinear(6, 5), nn.ReLU(), MyLinear(5, 3))
    prunelab.prune(model, 0.4, "unit_l2")
    assert isinstance(model[0], MyLinear) and model[0].weight_mask.shape == (5, 6)
    assert prunelab.sparsity_report(model).layers[0].dead_units == 2


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda m, x: prunelab.prune(m, 1.0, example_inputs=x), "sparsity must be in [0, 1)"),
        (lambda m, x: prunelab.prune(m, -0.1, example_inputs=x), "sparsity must be in [0, 1)"),
        (lambda m, x: prunelab.prune(m, 0.5, "fisher", example_inputs=x), "unknown criterion"),
        (lambda m, x: prunelab.prune(m, 0.5, allocation="x", example_inputs=x), "allocation"),
        (lambda m, x: prunelab.prune(m, 0.5, "snip", example_inputs=x), "pass data="),
        (lambda m, x: prunelab.prune(m, {"nope": 0.5}, example_inputs=x), "its layers: conv1"),
        (lambda m, x: prunelab.prune(m, [0.5], example_inputs=x), "one sparsity per pruned"),
        (lambda m, x: prunelab.prune(m, 0.5, "unit_l2", "erk", example_inputs=x), "uniform"),
        (
            lambda m, x: prunelab.prune(m, [0.1, 0.2, 0.3], allocation="global", example_inputs=x),
            "allocation='uniform'",
        ),
        (lambda m, x: prunelab.prune(m, 0.5), "pass example_inputs="),
        (lambda m, x: prunelab.export(m, "coo", example_inputs=x), "unknown export target"),
        (lambda m, x: prunelab.apply(m, {"conv1.bias": torch.ones(6)}), "not the weight"),
    ],
)
def test_what_the_api_cannot_do_is_refused_in_one_line(call, says):
    model, x = cnn(), batch()[0]
    with pytest.raises(prunelab.PruningError) as e:
        call(model, x)
    assert says in str(e.value) and "\n" not in str(e.value)
    assert not any(isinstance(m, (PrunedLinear, PrunedConv2d)) for m in model.modules())


def test_unit_pruning_refuses_a_layer_that_feeds_a_sum_and_weight_pruning_works():
    model = ResidualMLP()
    with pytest.raises(prunelab.PruningError, match=r"cannot prune units of a\.weight"):
        prunelab.prune(model, 0.5, "unit_l2")
    assert list(prunelab.prune(model, 0.5)) == ["a.weight"]


def test_a_linear_subclass_with_its_own_forward_is_refused():
    class Scaled(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    model = nn.Sequential(Scaled(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(prunelab.PruningError, match=r"overrides Linear\.forward"):
        prunelab.prune(model, 0.5)


@pytest.mark.parametrize(
    ("criterion", "allocation"), [("magnitude", "global"), ("snip", "uniform")]
)
def test_the_api_and_the_command_lines_stack_give_the_challenge_mlp_the_same_masks(
    criterion, allocation
):
    """The MLP as a user's ``nn.Sequential`` and as prunelab's own stacked MLP (what
    ``python -m prunelab.train`` prunes): the same weights, the same masks."""
    from prunelab.selection import method, stacked_masks

    torch.manual_seed(0)
    sizes = [784, 100, 60, 10]
    layers = [nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(sizes)]
    model = nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2])
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(64, 784, generator=g), torch.randint(0, 10, (64,), generator=g)
    weights = [layer.weight.detach().clone()[None] for layer in layers]
    theirs = stacked_masks(method(criterion, allocation), weights, [0.8], [0], pruned=[0, 1],
                           batches=[(x, y)])  # fmt: skip
    ours = prunelab.prune(model, 0.8, criterion, allocation, data=(x, y))
    for name, mask in zip(["0.weight", "2.weight"], theirs, strict=True):
        assert torch.equal(ours[name], mask[0]), name


def test_a_data_driven_criterion_runs_inside_the_callers_inference_mode():
    model, (x, y) = cnn(), batch()
    with torch.inference_mode():
        masks = prunelab.prune(model, 0.5, "snip", data=(x.clone(), y.clone()))
    assert int((~masks["fc.weight"]).sum()) == round(0.5 * masks["fc.weight"].numel())

"""The module and the pruning callback: pruned weights never revive, masks survive
checkpoints, each member's prune touches only that member."""

from __future__ import annotations

import dataclasses
import math
import types

import pytest
import pytorch_lightning as pl
import torch

from prunelab import resume
from prunelab.callbacks import PruningCallback, mask_optimizer_state
from prunelab.config import strategy_method
from prunelab.config.schema import OptimConfig
from prunelab.data import BatchLoader
from prunelab.errors import TrainingError
from prunelab.functional import member_losses
from prunelab.module import CHECKPOINT_FORMAT, PruningModule, forward_in_blocks
from prunelab.nets import MaskedMLP, StackedMLP
from prunelab.optimizers import build_optimizers, lr_factor
from prunelab.resume import LastCheckpoint, checkpoint_due
from prunelab.schedules import OneshotSchedule

SMALL = [784, 64, 48, 32, 10]


def stack_of(n: int, sizes=SMALL) -> StackedMLP:
    torch.manual_seed(0)
    return StackedMLP([MaskedMLP(sizes) for _ in range(n)])


def module_of(net: StackedMLP, lr: float = 1e-3, **kw) -> PruningModule:
    """A module at a constant rate ``lr`` after one dense epoch (a one-shot schedule)."""
    optim = OptimConfig(lr=lr, lr_schedule="constant")
    return PruningModule(net, optim, OneshotSchedule(epochs=1), **kw)


def one_shot(strategy: str, k: float) -> PruningCallback:
    """Prune one member (seed 0) to ``k`` after one dense epoch."""
    m = strategy_method(strategy)
    return PruningCallback([m], [k], [0], OneshotSchedule(epochs=1), False, None, [strategy])


def trainer(tmp_path, max_epochs: int, callbacks) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        default_root_dir=tmp_path,
    )


def _fit(strategy: str, tmp_path, finetune_steps: int = 200):
    torch.manual_seed(0)
    x, y = torch.randn(256, 784), torch.randint(0, 10, (256,))
    loader = BatchLoader(x, y, batch_size=32, shuffle=True)  # 8 steps per epoch
    module = module_of(stack_of(1), lr=1e-2, val_splits=())
    cb = one_shot(strategy, 0.7)
    t = trainer(tmp_path, 1 + finetune_steps // len(loader), [cb])
    masks_at_prune = {}
    orig_prune = cb.prune

    def spy(trainer, pl_module, *args):
        out = orig_prune(trainer, pl_module, *args)
        masks_at_prune.update({i: m.clone() for i, m in enumerate(pl_module.net.masks(0))})
        return out

    cb.prune = spy
    t.fit(module, train_dataloaders=loader)
    return module, t, masks_at_prune


@pytest.mark.parametrize("strategy", ["weight", "neuron"])
def test_pruned_weights_stay_exactly_zero_through_200_adam_steps_and_a_checkpoint(
    strategy, tmp_path
):
    module, t, masks_at_prune = _fit(strategy, tmp_path)
    assert t.global_step == 8 + 200
    opt = t.optimizers[0]
    for i, layer in enumerate(module.net.layers):
        mask, weight = layer.mask[0], layer.weight[0]
        assert torch.equal(mask, masks_at_prune[i])
        assert int((weight[~mask] != 0).sum()) == 0
        state = opt.state[layer.weight]
        assert int((state["exp_avg"][0][~mask] != 0).sum()) == 0
        assert bool((weight[mask] != 0).any()), "kept weights still train"
    assert int((~module.net.layers[0].mask).sum()) > 0

    ckpt = tmp_path / "model.ckpt"
    t.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)
    restored = module_of(stack_of(1))
    restored.load_state_dict(state["state_dict"])
    for a, b in zip(restored.net.layers, module.net.layers, strict=True):
        assert torch.equal(a.mask, b.mask)
        assert torch.equal(a.weight, b.weight)
        assert int((a.weight[~a.mask] != 0).sum()) == 0
    assert state["callbacks"]["PruningCallback"]["current"] == [0.7]
    assert state["prunelab"] == {"format": CHECKPOINT_FORMAT, "members": 1}


def test_pruning_happens_before_the_reported_test_even_without_finetuning(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
    module = module_of(stack_of(1))
    cb = one_shot("weight", 0.9)
    t = trainer(tmp_path, 1, [cb])
    t.fit(module, BatchLoader(x, y, 32), [BatchLoader(x, y, 32)] * 2)
    assert not cb.pruned, "dense epochs run unpruned"
    t.test(module, [BatchLoader(x, y, 32)] * 3, verbose=False)
    assert cb.pruned
    assert cb.figures(module)[0]["sparsity/layer1"] == pytest.approx(0.9, abs=1e-4)
    assert module.figures["m0/final/sparsity/layer1"] == pytest.approx(0.9, abs=1e-4)
    # The test runs on copies made at test start: a prune after they are made would report
    # the pruned sparsity next to the dense model's loss.
    with torch.no_grad():
        pruned_loss = float(member_losses(module.net(x), y)[0])
    assert module.figures["m0/final/test/loss"] == pytest.approx(pruned_loss, rel=1e-5)


def test_the_final_prune_at_test_start_leaves_the_optimizer_alone(tmp_path, monkeypatch):
    # Regression (H200, 2026-11-25): after fit Lightning moves the optimizer state off the
    # GPU; the final prune at test start multiplied it by masks on the GPU and crashed.
    from prunelab.callbacks import pruning as callbacks

    calls = []
    real = callbacks.mask_optimizer_state

    def spy(optimizer, net, members):
        calls.append(list(members))
        real(optimizer, net, members)

    monkeypatch.setattr(callbacks, "mask_optimizer_state", spy)
    x, y = torch.randn(64, 784), torch.randint(0, 10, (64,))
    module = module_of(stack_of(1))
    # one dense epoch, then fitting ends before the prune due at the next epoch's start
    cb = one_shot("weight", 0.9)
    t = trainer(tmp_path, 1, [cb])
    t.fit(module, BatchLoader(x, y, 32), [BatchLoader(x, y, 32)] * 2)
    assert calls == [] and not cb.pruned
    t.test(module, [BatchLoader(x, y, 32)] * 3, verbose=False)
    assert cb.pruned and calls == [], "pruned for the test, its optimizer state untouched"


def test_a_members_prune_masks_only_its_own_slice_of_the_optimizer_state():
    stack = stack_of(3, [6, 5, 3])
    opt = torch.optim.Adam(stack.parameters())
    stack(torch.randn(4, 6)).square().sum().backward()
    opt.step()
    before = {id(p): {k: v.clone() for k, v in opt.state[p].items()} for p in stack.parameters()}
    stack.prune([1], strategy_method("weight"), [0.6])
    mask_optimizer_state(opt, stack, [1])
    for layer in stack.layers[:-1]:
        moments = opt.state[layer.weight]["exp_avg"]
        assert torch.equal(moments[[0, 2]], before[id(layer.weight)]["exp_avg"][[0, 2]])
        assert int((moments[1][~layer.mask[1]] != 0).sum()) == 0
        assert bool((moments[1][layer.mask[1]] != 0).any())


@pytest.mark.parametrize(
    ("make_opt", "buffers"),
    [
        (lambda p: torch.optim.Adam(p), {"exp_avg", "exp_avg_sq"}),
        (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), {"momentum_buffer"}),
    ],
    ids=["adam", "sgd-momentum"],
)
@pytest.mark.parametrize("members", [[1], [0, 1, 2]], ids=["one", "all"])
def test_a_prune_zeroes_every_per_weight_optimizer_buffer_where_it_prunes(
    make_opt, buffers: set[str], members: list[int]
):
    """Adam's second moment and SGD's momentum move a pruned weight as surely as Adam's first
    moment does: every buffer shaped like the weight is masked, for one member's slice (an
    indexed write) and for the whole stack (one in-place product)."""
    stack = stack_of(3, [6, 5, 3])
    opt = make_opt(stack.parameters())
    stack(torch.randn(4, 6)).square().sum().backward()
    opt.step()
    stack.prune(members, strategy_method("weight"), [0.6] * len(members))
    mask_optimizer_state(opt, stack, members)
    for layer in stack.layers[:-1]:
        state = opt.state[layer.weight]
        assert buffers <= set(state), "the optimizer keeps the buffers named"
        for key in buffers:
            for m in members:
                pruned = state[key][m][~layer.mask[m]]
                assert pruned.numel() and int((pruned != 0).sum()) == 0, (key, m)


@pytest.mark.reliability
def test_nan_loss_stops_training_with_a_clear_error(tmp_path):
    module = module_of(stack_of(1), val_splits=())
    x = torch.randn(64, 784)
    x[40] = float("nan")  # one bad sample in the epoch's second batch
    t = trainer(tmp_path, 3, [])
    with pytest.raises(TrainingError, match=r"^loss became nan in epoch 0.*lower optim\.lr"):
        t.fit(module, BatchLoader(x, torch.zeros(64, dtype=torch.long), 32))
    assert t.current_epoch == 0, "stopped at the end of the epoch it diverged in"


@pytest.mark.reliability
def test_a_diverged_member_is_named(tmp_path):
    module = module_of(stack_of(3), val_splits=())
    with torch.no_grad():
        module.net.layers[0].weight[2].fill_(float("inf"))
    x = torch.randn(64, 784)
    t = trainer(tmp_path, 3, [])
    with pytest.raises(TrainingError, match=r"^loss of member\(s\) \[2\] became nan"):
        t.fit(module, BatchLoader(x, torch.zeros(64, dtype=torch.long), 32))


def test_a_training_step_never_waits_for_the_device(monkeypatch):
    # A host read per step (Tensor.item, tolist, bool, float, int, an index) stalls a GPU's
    # queue every step; the step's start hook counts too: with its masks checked once and
    # unchanged since, it must not read them again.
    module = module_of(stack_of(2))
    module.net.refresh_full_masks()
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(
            torch.Tensor, name, lambda t, *a, r=real, n=name: reads.append(n) or r(t, *a)
        )
    x = torch.randn(8, 784)
    module.on_train_batch_start((x, torch.zeros(8, dtype=torch.long)), 0)
    module.training_step((x, torch.zeros(8, dtype=torch.long)), 0).backward()
    monkeypatch.undo()
    assert reads == []


def test_lr_decays_over_the_dense_phase_then_again_over_fine_tuning():
    dense = [
        lr_factor("cosine", 4, 0.5, e, finetune_schedule="cosine", total_epochs=7) for e in range(4)
    ]
    after = [
        lr_factor("cosine", 4, 0.5, e, finetune_schedule="cosine", total_epochs=7)
        for e in range(4, 7)
    ]
    assert dense == [
        lr_factor("cosine", 4, 0.5, e, finetune_schedule="cosine") for e in range(4)
    ], "dense: cache-safe"
    # the cosine itself, not just any decay from 1
    assert dense == pytest.approx([0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])
    assert after == pytest.approx([0.5, 0.375, 0.125]), "restart at the scale, decay again"
    assert lr_factor("constant", 4, 0.5, 5, finetune_schedule="constant", total_epochs=7) == 0.5


def test_a_checkpoint_is_due_every_n_epochs_while_saving_stays_within_its_share():
    assert checkpoint_due(1, 1, elapsed_s=0.1, cost_s=0.0, max_share=0.05), "first: always"
    assert not checkpoint_due(4, 5, elapsed_s=100.0, cost_s=0.0, max_share=0.05)
    # 2 s saved so far + 2 s for this one: due once 80 s have been trained at 5 %
    assert not checkpoint_due(5, 5, elapsed_s=79.0, cost_s=4.0, max_share=0.05)
    assert checkpoint_due(7, 5, elapsed_s=80.0, cost_s=4.0, max_share=0.05)
    assert checkpoint_due(1, 1, elapsed_s=1.0, cost_s=1.0, max_share=1.0), "1.0: no cap"


@pytest.mark.parametrize(
    ("every", "share", "epochs", "saved_after"),
    # every 2 of 6 epochs: 1 and 3, counted from the last save; 5 is the last epoch
    [(1, 1.0, 4, [0, 1, 2]), (1, 1e-9, 4, [0]), (2, 1.0, 6, [1, 3])],
)
def test_last_checkpoint_saves_within_its_share_and_never_after_the_last_epoch(
    tmp_path, monkeypatch, every, share, epochs, saved_after
):
    saved = []
    # A clock of its own that ticks 1 s per reading: the decision is about shares of time, and
    # this machine's real timings (tiny epochs, a save's file I/O) must not decide the test.
    ticks = iter(range(10_000))
    monkeypatch.setattr(resume, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    cb = LastCheckpoint(tmp_path / "last.ckpt", every_n_epochs=every, max_share=share, identity="x")
    module = module_of(stack_of(1), val_splits=())
    t = trainer(tmp_path, epochs, [cb])
    monkeypatch.setattr(t, "save_checkpoint", lambda *a, **k: saved.append(t.current_epoch))
    x = torch.randn(64, 784)
    t.fit(module, BatchLoader(x, torch.zeros(64, dtype=torch.long), 32))
    assert saved == saved_after


def test_with_steps_per_epoch_fine_tuning_anneals_within_its_epochs_and_dense_keeps_its_own():
    optim = OptimConfig(lr=1.0, lr_schedule="cosine")
    hp = {"optim": dataclasses.asdict(optim), "finetune_scale": 1.0, "lr_epochs": 2,
          "total_epochs": 3, "rewind_epoch": None, "steps_per_epoch": 4}  # fmt: skip
    opt_cfg = build_optimizers([torch.nn.Parameter(torch.zeros(1))], hp)
    opt, sched = opt_cfg["optimizer"], opt_cfg["lr_scheduler"]["scheduler"]
    assert opt_cfg["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    per_epoch = [
        lr_factor("cosine", 2, 1.0, e, finetune_schedule="cosine", total_epochs=3) for e in range(2)
    ]
    assert lrs[:8] == [per_epoch[0]] * 4 + [per_epoch[1]] * 4, "dense: one factor per epoch"
    tail = lrs[8:]
    assert tail == sorted(tail, reverse=True) and tail[-1] < 0.25 * tail[0], "anneals in-epoch"


def test_a_constant_dense_phase_is_followed_by_an_annealed_fine_tune():
    """The default: a constant dense rate (its model averaged), then fine-tuning restarted at
    its own rate and annealed, as a cosine dense phase would be followed."""
    kw = {"finetune_schedule": "cosine", "total_epochs": 7}
    dense = [lr_factor("constant", 4, 0.5, e, **kw) for e in range(4)]
    after = [lr_factor("constant", 4, 0.5, e, **kw) for e in range(4, 7)]
    assert dense == [1.0] * 4 and after == pytest.approx([0.5, 0.375, 0.125])


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("per_member_x", [False, True])
def test_an_evaluation_in_blocks_gives_the_whole_batchs_logits_bit_for_bit(members, per_member_x):
    """``forward_in_blocks`` only changes how much of a batch meets the caches at once:
    blocked and whole give the same bits, for a plain model and for a stack (shared or
    per-member inputs); with gradients on it leaves the forward whole."""
    torch.manual_seed(0)
    nets = [MaskedMLP([784, 300, 100, 10]) for _ in range(members)]
    nets[0].prune(strategy_method("weight"), 0.7)
    stack = StackedMLP(nets)
    x = torch.randn(members, 2500, 784) if per_member_x else torch.randn(2500, 784)
    with torch.no_grad():
        assert torch.equal(forward_in_blocks(stack, x, rows=1000), stack(x))
        if not per_member_x:
            assert torch.equal(forward_in_blocks(nets[0], x, rows=999), nets[0](x))
    split = []
    stack.register_forward_pre_hook(lambda _m, args: split.append(args[0].shape[-2]))
    forward_in_blocks(stack, x, rows=1000)  # gradients on: one whole forward
    with torch.inference_mode():
        forward_in_blocks(stack, x, rows=1000)
    assert split == [2500, 1000, 1000, 500]

"""``studies/snip_reference/snip_reference.py``, the independent re-implementation of
snip-public's SNIP: its mask is the global top-k of |w · ∂L/∂w| (checked against the gradient
with respect to the weights themselves, not the mask), zero biases score 0 and are pruned
when they are in the mask, and a short run end to end writes the readings the table
summarises."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
import torch.nn.functional as F

from .conftest import load_script, script_main


@pytest.fixture(scope="module")
def ref():
    return load_script("studies/snip_reference/snip_reference")


def tiny(gen: torch.Generator) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """A 6-5-4-3 net with zero biases (as snip-public initialises them) and a batch."""
    sizes = (6, 5, 4, 3)
    weights = [torch.randn(a, b, generator=gen, dtype=torch.float64)
               for a, b in itertools.pairwise(sizes)]  # fmt: skip
    biases = [torch.zeros(b, dtype=torch.float64) for b in sizes[1:]]
    x = torch.randn(8, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=gen)
    return weights + biases, x, y


def weight_saliency(params, x, y) -> torch.Tensor:
    """|w · ∂L/∂w| from the gradient with respect to the weights (not the mask)."""
    ws = [p.clone().requires_grad_(True) for p in params[:3]]
    loss = F.cross_entropy(ref_forward(ws + list(params[3:]), x), y)
    grads = torch.autograd.grad(loss, ws)
    return torch.cat([(w * g).abs().flatten() for w, g in zip(ws, grads, strict=True)])


def ref_forward(params, x):
    h = F.relu(x @ params[0] + params[3])
    h = F.relu(h @ params[1] + params[4])
    return h @ params[2] + params[5]


@pytest.mark.parametrize("sparsity", [0.5, 0.8])
def test_the_mask_keeps_the_top_saliencies_and_prunes_zero_biases(ref, sparsity):
    params, x, y = tiny(torch.Generator().manual_seed(1))
    masks = ref.snip_masks(params, x, y, sparsity, keep_biases=False)
    n_all = sum(p.numel() for p in params)
    kept = round(n_all * (1 - sparsity))
    assert sum(int(m.sum()) for m in masks) == kept
    assert all(int(m.sum()) == 0 for m in masks[3:]), "a zero bias scores 0: pruned"
    scores = weight_saliency(params, x, y)
    chosen = torch.cat([m.flatten() for m in masks[:3]]).bool()
    # every kept weight outscores every pruned one
    assert scores[chosen].min() > scores[~chosen].max()


def test_keep_biases_leaves_them_out_of_the_mask_and_counts_weights_only(ref):
    params, x, y = tiny(torch.Generator().manual_seed(2))
    masks = ref.snip_masks(params, x, y, 0.75, keep_biases=True)
    n_weights = sum(p.numel() for p in params[:3])
    assert sum(int(m.sum()) for m in masks[:3]) == round(n_weights * 0.25)
    assert all(bool(m.all()) for m in masks[3:])
    # the same weights are chosen as with the biases in the mask: they score 0 either way
    in_mask = ref.snip_masks(params, x, y, 0.75, keep_biases=False)
    scores = weight_saliency(params, x, y)
    top = set(torch.topk(scores, round(n_weights * 0.25)).indices.tolist())
    assert top == set(torch.cat([m.flatten() for m in masks[:3]]).nonzero().flatten().tolist())
    assert sum(int(m.sum()) for m in in_mask[:3]) == round(sum(p.numel() for p in params) * 0.25)


def test_the_readings_of_a_history(ref):
    # [iteration, val, test]: the published reading sees only the last five checkpoints
    history = [[1, 0.5, 0.99], [2, 0.9, 0.6], [3, 0.9, 0.7], [4, 0.6, 0.8], [5, 0.6, 0.7],
               [6, 0.6, 0.75], [7, 0.6, 0.72]]  # fmt: skip
    assert ref.readings(history) == {"last5": 0.8, "last": 0.72, "max": 0.99, "at_best_val": 0.6}


def test_a_short_run_writes_every_reading_and_the_table_reads_it(ref, tmp_path, monkeypatch,
                                                                 capsys):  # fmt: skip
    out = tmp_path / "k0.9_seed0.json"
    args = ["--sparsity", "0.9", "--iterations", "40", "--decay-every", "20",
            "--check-every", "20", "--out", str(out)]  # fmt: skip
    assert script_main(ref, monkeypatch, *args) == 0, capsys.readouterr().err[-3000:]
    r = json.loads(out.read_text())
    assert [h[0] for h in r["history"]] == [20, 40]
    assert r["test_acc_last"] == r["history"][-1][2]
    assert r["test_acc_max"] == max(h[2] for h in r["history"])
    assert r["test_acc_last5"] == max(h[2] for h in r["history"][-5:])
    assert r["biases_kept"] == [0, 0, 0]
    total = 784 * 300 + 300 * 100 + 100 * 10 + 410
    assert sum(r["weights_kept"]) == round(total * 0.1)
    capsys.readouterr()
    assert script_main(ref, monkeypatch, "--table", str(tmp_path)) == 0
    assert "| 90 | pruned | 1 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--sparsity", "1.0", "--out", "x.json"], "--sparsity 1.0 is outside [0, 1)"),
     (["--table", "."], "no results (*.json) in ."),
     (["--sparsity", "0.9"], "--sparsity and --out are needed")],
)  # fmt: skip
def test_bad_input_is_one_line_that_says_what_to_do(ref, tmp_path, monkeypatch, capsys, args,
                                                     message):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert script_main(ref, monkeypatch, *args) == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]

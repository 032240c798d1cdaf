"""What the report's figures are called and say: their file names (bounded in length, one per
strategy and group), the strategies' and axes' labels, the legend's note on the bands. Kept
apart from the drawing, so that the markdown names the plots without importing it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pandas as pd

EQUAL_COST_PLOTS = [
    (
        "Accuracy_vs_Effective_Sparsity.png",
        "sparsity/effective",
        "effective sparsity (% of prunable weights masked or dead)",
    ),
    (
        "Accuracy_vs_FLOPs.png",
        "flops/best",
        "FLOPs per sample of the compact or sparse form (log scale; cheaper to the left)",
    ),
]
DROP_PLOT = "Accuracy_Drop_vs_Compression.png"
COMPARISON_PLOTS = {
    "train": "Training_Accuracy_Comparison_for_different_Pruning_Strategies.png",
    "test": "Testing_Accuracy_Comparison_for_different_Pruning_Strategies.png",
}
STRATEGY_LABEL = {
    "weight": "weight pruning",
    "neuron": "unit (neuron) pruning",
    "random_weight": "random weights (control)",
    "random_neuron": "random units (control)",
    "global_weight": "global weight magnitude",
    "erk_weight": "weight magnitude, ERK allocation",
    "lamp": "LAMP",
    "snip": "SNIP",
    "grasp": "GraSP",
    "synflow": "SynFlow",
    "taylor_weight": "Taylor (weights)",
    "taylor_neuron": "Taylor (units)",
    "activation_neuron": "mean activation (units)",
    "apoz_neuron": "APoZ (units)",
    "activation_out_neuron": "activation × outgoing norm (units)",
    "set": "SET (sparse training, random growth)",
    "rigl": "RigL (sparse training, gradient growth)",
    "imp": "IMP (iterative magnitude pruning, rewound)",
}
# The field's spelling of each method's name, in labels and file names alike.
FIELD_SPELLING = {
    "snip": "SNIP", "grasp": "GraSP", "synflow": "SynFlow", "lamp": "LAMP", "erk": "ERK",
    "rigl": "RigL", "set": "SET", "imp": "IMP", "apoz": "APoZ",
}  # fmt: skip
X_AXES = ("sparsity", "compression")
COMPRESSION_LABEL = "compression ratio 1/(1 − s), s = share of weights masked (×, log scale)"
EFFECTIVE_COMPRESSION_LABEL = (
    "effective compression ratio 1/(1 − s), s = share of weights masked or dead (×, log scale)"
)
SHARED_LABEL = "dense phase (the same for every k)"
FINAL_LABEL = "final evaluation, after pruning (at the last epoch)"
# Lightning's per-epoch train accuracy is a running mean over the epoch's batches; the final
# one is measured on a fixed training subset after pruning.
TRAIN_Y = "training accuracy (%): running, per epoch"
TRAIN_FINAL_LABEL = "final evaluation, after pruning, on a fixed training subset"
# Longest file name the report writes: readable, and far below the file systems' 255 bytes.
MAX_NAME_BYTES = 120


def spell(word: str) -> str:
    """One word of a method's name as the field writes it (``rigl`` → ``RigL``), else as is."""
    return FIELD_SPELLING.get(word.lower(), word)


def strategy_label(strategy: str) -> str:
    """A strategy's name in every label of the report (a plug-in's: its name as typed)."""
    return STRATEGY_LABEL.get(strategy, strategy)


def sentence_start(text: str) -> str:
    """``text`` with its first letter upper case and the rest kept (``str.capitalize`` would
    turn SNIP into Snip)."""
    return text[:1].upper() + text[1:]


def file_title(strategy: str) -> str:
    """``weight`` → ``Weight``, ``random_neuron`` → ``Random_Neuron``, ``snip`` → ``SNIP``:
    the seed's file names, with the field's spelling of a method."""
    return "_".join(FIELD_SPELLING.get(p.lower(), p.capitalize()) for p in strategy.split("_"))


def slug(group: str) -> str:
    """A group label as a file-name suffix: ``schedule.finetune_epochs=1`` → ``…_1``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", group).strip("_")


def bounded_name(stem: str, group: str = "", ext: str = ".png") -> str:
    """``stem__<group slug>.ext``, as long as it fits ``MAX_NAME_BYTES``; else the readable
    start of it and ``_<8 hex>``, a hash of the stem and the whole group label, so two groups
    never share a file and the same group keeps its name from one report to the next."""
    readable = f"{stem}__{slug(group)}" if group else stem
    if len((readable + ext).encode()) <= MAX_NAME_BYTES:
        return readable + ext
    digest = hashlib.sha1(f"{stem}\n{group}".encode()).hexdigest()[:8]
    room = MAX_NAME_BYTES - len(f"_{digest}{ext}".encode())
    head = readable.encode()[:room].decode(errors="ignore").rstrip("_")
    return f"{head}_{digest}{ext}"


def epoch_plot_name(split: str, strategy: str, group: str = "") -> str:
    return bounded_name(f"{split.capitalize()}_Accuracy_{file_title(strategy)}_Pruning", group)


def sparsity_plot_name(strategy: str) -> str:
    return bounded_name(f"Accuracy_vs_Sparsity_for_{file_title(strategy)}_Pruning")


def line_label(strategy: str, group: str) -> str:
    """A line's legend entry: the strategy, then its group's name (``read.group_name``)."""
    return f"{strategy_label(strategy)} · {group}" if group else strategy_label(strategy)


def k_label(strategies: list[str], overall: set[str]) -> str:
    """What k means on an axis: per pruned layer, and over all pruned layers together for a
    strategy whose allocation spreads k over the layers (``overall``: global, ERK, LAMP)."""
    per_layer = "% of weights or units removed per pruned layer"
    if any(s in overall for s in strategies):
        if all(s in overall for s in strategies):
            return "sparsity k (% of weights removed over all pruned layers together)"
        return f"sparsity k ({per_layer}; global: over all pruned layers together)"
    return f"sparsity k ({per_layer})"


def band_note(seeds: Any) -> str:
    """The legend entry of the shaded bands, from the number of seeds behind each point."""
    n = pd.Series(seeds, dtype=float).dropna()
    lo, hi = (int(n.min()), int(n.max())) if len(n) else (1, 1)
    if hi <= 1:
        return "one seed per point: no band"
    if lo == hi:
        return f"band: ± 1 std over {hi} seeds"
    return f"band: ± 1 std over seeds ({lo}–{hi} per point)"

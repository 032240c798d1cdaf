"""prunelab: how much of a neural network can be pruned away, by which strategy, at what cost."""

__version__ = "0.1.0"

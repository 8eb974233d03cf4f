# Two commands do everything on a fresh machine:
#   make demo         create .venv, install the package, run the main job on the embedded sample
#   make test         install with all extras (torch, test tools) and run the whole suite (CI)
# and for development:
#   make test-fast    unit and reference tests (< 1 min): not the slow, scale, model or differential tiers
#   make test-latest  the whole suite in .venv-latest with the newest releases setup.cfg admits
#   make lock         rewrite .ci/constraints.txt from .venv (after a green make test-latest)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := ochuman/data/ochuman-sample/annotations/ochuman.json
# Installs take every version from this lock of known-good versions (setup.cfg keeps ranges), so
# that a new release of a dependency cannot turn a fresh machine red overnight. The build runs
# without isolation, with the lock's setuptools and wheel, for the same reason.
LOCK := .ci/constraints.txt
PIP := python -m pip install --quiet --constraint $(LOCK)
# torch/torchvision as this project's machines provide them (CPU here).
TORCH := torch torchvision
# Editable installs in "compat" mode: a path entry instead of an import hook (saves ~8 ms of
# every command's start); the compiled core is rebuilt when its source changes.
EDITABLE := --no-build-isolation --config-settings editable_mode=compat
DEPS := setup.cfg pyproject.toml $(wildcard ochuman/csrc/*.c ochuman/csrc/*.h) $(LOCK)

.PHONY: demo test test-fast test-latest lock lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP) pip setuptools wheel

$(VENV)/.base: $(BIN)/python $(DEPS)
	$(BIN)/$(PIP) -e . $(EDITABLE)
	touch $@

$(VENV)/.all: $(BIN)/python $(DEPS)
	$(BIN)/$(PIP) $(TORCH)
	$(BIN)/$(PIP) -e ".[model,dev]" $(EDITABLE)
	touch $@ $(VENV)/.base

demo: $(VENV)/.base
	@mkdir -p demo_out
	$(BIN)/ochuman stats $(SAMPLE)
	$(BIN)/ochuman stats $(SAMPLE) --filter none --format markdown
	$(BIN)/ochuman convert $(SAMPLE) --out demo_out --split val --range 0 1 --range 0.5 0.75 --range 0.75 1
	$(BIN)/pose2seg predict --model skeleton-prior --gt $(SAMPLE) --out demo_out/skeleton_prior.json
	$(BIN)/ochuman eval --gt $(SAMPLE) --results demo_out/skeleton_prior.json --name skeleton-prior \
		--by-max-iou --plot demo_out/pr_curves.png --errors --errors-plot demo_out/errors.png \
		--out demo_out/report.json
	$(BIN)/ochuman show $(SAMPLE) --hardest 8 --out demo_out/hardest_persons.png
	$(BIN)/ochuman show $(SAMPLE) --histogram --out demo_out/max_iou_histogram.png
	$(BIN)/ochuman show $(SAMPLE) --image-id 000005 --results demo_out/skeleton_prior.json \
		--out demo_out/side_by_side.png
	$(BIN)/ochuman report --gt $(SAMPLE) --results demo_out/skeleton_prior.json --name skeleton-prior \
		--out demo_out/report.html

test: $(VENV)/.all
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 tests

test-fast: $(VENV)/.all
	$(BIN)/python -m pytest -n 2 -m "not slow and not scale and not model and not differential" tests

# No lock: the newest releases that setup.cfg admits, in a venv of their own.
LATEST := .venv-latest
test-latest:
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(LATEST)/bin/python -m pip install --quiet --upgrade $(TORCH)
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[model,dev]" $(EDITABLE)
	$(LATEST)/bin/lint-imports
	$(LATEST)/bin/python -m pytest -n 2 tests

lock: $(VENV)/.all
	{ sed -n '/^#/p' $(LOCK); $(BIN)/python -m pip freeze --all --exclude ochuman-toolkit; } > $(LOCK).part
	mv $(LOCK).part $(LOCK)

bench: $(VENV)/.all
	$(BIN)/python bench/bench_load_stats.py

clean:
	rm -rf $(VENV) $(LATEST) demo_out bench/out .pytest_cache .hypothesis

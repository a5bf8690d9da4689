# The one entry point for people and CI. Every target creates and reuses .venv itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## demo: the main job against the embedded tenant of the sample desired-state
demo: $(STAMP)
	$(BIN)/reconciler demo

## lint: ruff (lint + format check) and mypy
lint: $(STAMP)
	$(BIN)/ruff check reconciler tests
	$(BIN)/ruff format --check reconciler tests
	$(BIN)/mypy

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

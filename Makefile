# `make demo` and `make test` each create or reuse .venv and install what they need from
# pyproject.toml; a stamp file re-installs only when pyproject.toml changes. Development
# tools are PEP 735 dependency groups (never published): `pip install --group` needs pip 25.1.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
CORE_STAMP := $(VENV)/.core-$(HASH)
DEV_STAMP := $(VENV)/.dev-$(HASH)
PYTEST_ARGS ?=

.PHONY: demo test lint bench bench-pg bench-large clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade 'pip>=25.1'

$(CORE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install -q -e . --group dev
	touch $@ $(CORE_STAMP)

demo: $(CORE_STAMP)
	$(BIN)/target-sync demo

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check connector tests bench examples
	$(BIN)/ruff format --check connector tests bench examples
	$(BIN)/mypy

bench: $(DEV_STAMP)
	$(BIN)/python -m bench.run --sizes 1000000

bench-pg: $(DEV_STAMP)
	$(BIN)/python -m bench.pg_read --rows 1000000 --repeat 3

bench-large: $(DEV_STAMP)
	$(BIN)/python -m bench.run --sizes 1000000,10000000

clean:
	rm -rf demo-work .target-sync .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info

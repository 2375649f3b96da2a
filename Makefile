# The two commands of the README: `make run` (demo server on SQLite) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-slow bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[postgres,mobile,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/fieldwatch demo --serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/sync_bench.py

lint: $(STAMP)
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) instance .pytest_cache

# Two commands for a fresh machine: `make run` (the main job on DuckDB) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,parquet]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/loadbay load examples/github_events.json --pipeline github_events --table events \
		--dataset airflow_events --write-disposition merge --primary-key id \
		--pipelines-dir .loadbay/pipelines

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/flat_duckdb.py
	$(BIN)/python bench/memory_noop.py
	$(BIN)/python bench/postgres.py
	$(BIN)/python bench/atomic_append.py

clean:
	rm -rf $(VENV) .loadbay/pipelines *.duckdb

# Two commands for a fresh machine: `make run` (the main job on DuckDB) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-spark crash install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,parquet]"
	# bytecode now: an editable install has none, and where PYTHONDONTWRITEBYTECODE is set every process
	# would compile loadbay's modules again (~0.15 s of each CLI run)
	$(BIN)/python -m compileall -q common destinations loadbay >/dev/null
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/loadbay load examples/github_events.json --pipeline github_events --table events \
		--dataset airflow_events --write-disposition merge --primary-key id \
		--pipelines-dir .loadbay/pipelines

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The Spark part of the suite (conformance, Spark tests) on a local standalone cluster started for it and
# stopped after (Java 17 from apt if missing, the 'spark' extra); .ci/run runs it after `test`.
test-spark: $(STAMP)
	bash .ci/spark

# The crash harness at full strength: every crash point (some reached again later in the run),
# CRASH_KILLS random SIGKILLs per destination and disposition (CRASH_DOUBLE_KILLS more that kill
# the resume run too), CRASH_TRIALS concurrency trials;
# prints the summary table and writes every case to .loadbay/crash-report.json.
CRASH_KILLS ?= 20
CRASH_DOUBLE_KILLS ?= 5
CRASH_TRIALS ?= 10
# CRASH_ARGS: more pytest arguments, e.g. "--lb-setup spark" for the Spark cluster alone (LOADBAY_TEST_SPARK set,
# scripts/spark.sh start)
CRASH_ARGS ?=
crash: $(STAMP)
	LOADBAY_CRASH_KILLS=$(CRASH_KILLS) LOADBAY_CRASH_DOUBLE_KILLS=$(CRASH_DOUBLE_KILLS) \
		LOADBAY_CONCURRENT_TRIALS=$(CRASH_TRIALS) LOADBAY_CRASH_POINTS=all \
		LOADBAY_CRASH_REPORT=.loadbay/crash-report.json $(BIN)/python -m pytest -q tests/crash $(CRASH_ARGS)

bench: $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,parquet,bench]"  # dlt 1.31 for the comparison figures only
	$(BIN)/python bench/flat_duckdb.py
	$(BIN)/python bench/memory_noop.py
	$(BIN)/python bench/postgres.py
	$(BIN)/python bench/atomic_append.py
	$(BIN)/python bench/arrow_inputs.py --memory
	$(BIN)/python bench/id_columns.py
	$(BIN)/python bench/small_loads.py --rounds 9
	$(BIN)/python bench/mysql_sqlite.py --rounds 3

clean:
	rm -rf $(VENV) .loadbay/pipelines *.duckdb

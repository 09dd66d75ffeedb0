# positioning: `make demo` runs the pipeline once offline; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test acceptance reliability lint format bench airflow airflow-live clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@# The venv's `airflow` gets the project's defaults (DAGs folder, metadata DB on first `dags test`).
	@printf '#!%s\nimport sys\nfrom positioning.airflow_entry import main\nsys.exit(main())\n' "$(abspath $(BIN))/python" > $(BIN)/airflow
	@chmod +x $(BIN)/airflow
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/positioning demo

test: $(STAMP)
	$(BIN)/ruff check dags plugins tests bench
	$(BIN)/pytest -q -n 2 --dist loadfile -m "not slow"

# The slow acceptance runs (marker `slow`, a few minutes each): Airflow backfills against the bulk fill, the
# 50-symbol snapshot at the documented limits, a fill that takes its first days from the Binance archive.
acceptance: $(STAMP)
	$(BIN)/pytest -q -n 2 --dist loadfile -m slow

# The reliability suite in full: the 60-scenario fault matrix through the DAG, SIGKILL before every publish
# statement, concurrency, compaction, SQL audit, fuzzing (about 8 min on 2 cores). `make test` runs them reduced.
reliability: $(STAMP)
	POSITIONING_FULL_MATRIX=1 POSITIONING_MATRIX_REPORT=artifacts/reliability_matrix.txt \
	  $(BIN)/pytest -q -p no:cacheprovider tests/test_reliability.py tests/test_crash.py tests/test_concurrency.py \
	  tests/test_compaction.py tests/test_sql_safety.py tests/test_params_fuzz.py

lint: $(STAMP)
	$(BIN)/ruff check dags plugins tests bench
	$(BIN)/ruff format --check dags plugins tests bench

format: $(STAMP)
	$(BIN)/ruff format dags plugins tests bench
	$(BIN)/ruff check --fix dags plugins tests bench

# Airflow UI on http://127.0.0.1:8080 with the venue simulator (airflow-live: the public venue APIs).
airflow: $(STAMP)
	$(BIN)/positioning airflow --sim

airflow-live: $(STAMP)
	$(BIN)/positioning airflow

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf .airflow data .pytest_cache

# biztalk-dr: two commands on a fresh machine — `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run run-celery test lint bench install clean stop

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python requirements.txt requirements-dev.txt constraints.txt pyproject.toml standin/pyproject.toml
	@ldconfig -p 2>/dev/null | grep -q libodbc.so.2 || { echo "unixODBC is missing: sudo apt-get install -y unixodbc tdsodbc"; exit 2; }
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -e . -e standin
	@touch $(STAMP)

install: $(STAMP)

## make test: the whole test suite (unit, stand-in end to end, DAG runs), in TEST_WORKERS processes (2), a test
## module per process: its tests keep their order and share their module's stand-ins and DAG runs
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

## make run: the stand-in SQL Server group and Airflow (api-server, scheduler, dag-processor, triggerer) with these
## DAGs; Ctrl-C, SIGTERM or SIGHUP stops all of it. Ports: BIZTALK_DR_API_PORT, BIZTALK_DR_STANDIN_PORTS, ...
## GROUPS=N (or BIZTALK_DR_GROUPS): N stand-in BizTalk groups at once, each its own primary, standby and file
GROUPS_ENV = $(if $(GROUPS),BIZTALK_DR_GROUPS="$(GROUPS)")
run: $(STAMP)
	$(GROUPS_ENV) PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/python scripts/run_local.py

## make run-celery: the same, in Airflow's production shape: PostgreSQL (BIZTALK_DR_POSTGRES_URL), CeleryExecutor
## with Redis (BIZTALK_DR_REDIS_URL) and two Celery workers; settings from deploy/airflow.env (docker-compose's too)
run-celery: $(STAMP)
	$(GROUPS_ENV) PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/python scripts/run_local.py --celery

## make stop: what a make run killed with SIGKILL left running (its process groups, recorded in var/)
stop: $(STAMP)
	$(BIN)/python scripts/run_local.py --stop

lint: $(STAMP)
	$(BIN)/ruff check dags include standin plugins tests benchmarks scripts

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

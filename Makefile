# Supervisor: the two commands a newcomer types are `make run` and `make test`.
# Everything installs from the lock file (uv.lock) into .venv; uv itself is pinned and bootstrapped into .tools.

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: run test lint unit env lock clean benchmarks reparse demo-history

run: $(STAMP) ## Airflow with our DAGs, plugin and a demo run on http://127.0.0.1:8080 (Ctrl-C stops it); EXECUTOR=celery WORKERS=2 TRIGGERERS=1
	$(BIN)/python -m supervisor_lib.local.run $(if $(EXECUTOR),--executor $(EXECUTOR)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(TRIGGERERS),--triggerers $(TRIGGERERS))

reparse: $(STAMP) ## while `make run` runs: show a new or edited spec now instead of within 30 s
	$(BIN)/python -m supervisor_lib.local.run --reparse

demo-history: $(STAMP) ## a month of demo calls (marked as demo data) in the `make run` store; ARGS=--remove takes them out
	$(BIN)/python -m supervisor_lib.local.demo_history $(ARGS)

test: $(STAMP) lint ## the whole suite: lint, types, unit, integration and DAG integrity tests
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP) ## the fast tests only
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

benchmarks: $(STAMP)
	$(BIN)/python -m benchmarks

env: $(STAMP)

$(UV):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Supervisor needs Python 3.11+ (set PYTHON=python3.11)"'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --python $(PYTHON)
	@touch $@

lock: | $(UV) ## re-resolve uv.lock after changing pyproject.toml
	$(UV) lock --python $(PYTHON)

clean:
	rm -rf $(VENV) $(TOOLS) .airflow .pytest_cache .mypy_cache .ruff_cache

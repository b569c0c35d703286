# The two commands: `make up` runs the OMS with demo data, `make test` runs the tests.
# Both create .venv and install the project (with dev extras) when needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up test test-soak bench lint format install clean-home stop

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(VENV)/bin/oms up

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# the long load, soak and fuzz runs (marked `soak`), kept out of `make test`
test-soak: $(STAMP)
	$(PY) -m pytest -m soak $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL=postgres://lint@127.0.0.1:1/none REDIS_URL=redis://127.0.0.1:1/0 $(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

stop: $(STAMP)
	$(VENV)/bin/oms services --stop

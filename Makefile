# Telemetron: `make run` serves on the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/telemetron

.PHONY: run test test-sqlite test-postgres lint format bench services clean

# The virtualenv with the project installed editable (so its entry points exist).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

# Test tools, the test-only plugin package, and the Node.js SDK the Segment tests
# drive (tests/e2e/segment_node, pinned by its package-lock.json; `npm ci` uses
# npm's cache when it has the packages).
$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml tests/fixtures/testplugins/pyproject.toml tests/e2e/segment_node/package-lock.json
	$(PY) -m pip install -q -e '.[dev]' -e tests/fixtures/testplugins
	npm ci --prefix tests/e2e/segment_node --no-audit --no-fund --prefer-offline --loglevel=error
	touch $@

run: $(VENV)/.installed
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py serve

services:
	bash scripts/ensure-services.sh

# The benchmark (loopback only, ~6 min; figures in bench/RESULTS.md): BENCH_BEFORE
# (default main) against this tree in one run, with py-spy profiles of both.
BENCH_BEFORE ?= main
bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	bash bench/run.sh compare --before $(BENCH_BEFORE) --profile bench/.work/profile

test: $(VENV)/.installed-dev services
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite: $(VENV)/.installed-dev
	$(PY) -m pytest

test-postgres: $(VENV)/.installed-dev
	TELEMETRON_DATABASE__URL=$(PG_TEST_URL) $(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) tests/.work *.sqlite3 *.sqlite3-shm *.sqlite3-wal

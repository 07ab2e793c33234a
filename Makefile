# Two commands for a newcomer: `make run` (the portal with everything it needs) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV := uv==0.13.10

.PHONY: run test test-fast worker migrate bench browser clean-db lock fuzz api-fuzz

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=python3.11)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv installs the locked tree in seconds where pip needs over a minute (it fetches the index one
	@# package at a time): most of a fresh clone's first start. pip does it alone if uv cannot be had.
	@if $(BIN)/python -m pip install --quiet --disable-pip-version-check $(UV) \
	    && $(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock \
	    && $(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e . ; then :; else \
	  echo "uv failed: installing with pip (slower)"; \
	  $(BIN)/python -m pip install --quiet -r requirements.lock \
	  && $(BIN)/python -m pip install --quiet --no-deps -e . ; fi
	@touch $(STAMP)

## make run: embedded PostgreSQL under var/, migrations, demo data on first start, the worker
## in-process, the gateway sandbox, http://127.0.0.1:$${PORT:-8000}. Ctrl-C stops everything.
run: $(STAMP)
	DEMO=$${DEMO:-1} SANDBOX=$${SANDBOX:-1} exec $(BIN)/portal run

worker: $(STAMP)
	$(BIN)/portal worker

migrate: $(STAMP)
	$(BIN)/portal migrate

## make test: the whole suite, browser tests included, on real PostgreSQL (embedded unless
## DATABASE_URL is set) with a real SAQ worker, SMTP server and Chromium.
test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Everything but the browser tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not browser" $(PYTEST_ARGS)

## Debian's Chromium drives the browser tests (Playwright cannot download its own here).
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ]; then \
	  echo "Installing Debian's chromium for the browser tests…"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils >/dev/null) \
	  || { echo "apt-get could not install chromium"; exit 1; }; \
	else \
	  echo "The browser tests need Debian's chromium: run 'sudo apt-get install chromium' (or make test-fast to skip them)."; exit 1; \
	fi

## Benchmarks at real size, end to end over HTTP (on demand, not part of the suite): tests/bench/test_pages.py.
## A first load of the large set can outlast the suite's 300 s hang watchdog on a busy machine.
bench: $(STAMP)
	TEST_HANG_SECONDS=$${TEST_HANG_SECONDS:-3600} $(BIN)/python -m pytest tests/bench -m bench -s

## The fuzz suite at length (the normal suite runs it seeded and short): FUZZ_EXAMPLES per route,
## FUZZ_SEED for another sequence. Totals by status code land in test-artifacts/fuzz-totals.json.
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} $(BIN)/python -m pytest tests/fuzz $(PYTEST_ARGS)

## Schemathesis against the live API at length (the normal suite runs it at 5 per operation and
## mode): API_FUZZ_EXAMPLES per operation and mode, API_FUZZ_SEED for another sequence. Totals
## (operations, examples, requests by status, failures) land in test-artifacts/api-fuzz-totals.json.
api-fuzz: $(STAMP)
	API_FUZZ_EXAMPLES=$${API_FUZZ_EXAMPLES:-100} $(BIN)/python -m pytest tests/api/test_api_schemathesis.py $(PYTEST_ARGS)

lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -e '^#' -e '^uv==' > requirements.lock

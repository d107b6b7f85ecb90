# IncliNET: `make run` starts the platform on embedded defaults; `make test` runs the whole suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/inclinet
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=
TEST_SQLITE ?= $(if $(PYTEST_ARGS),0,1)

.PHONY: install run test model lint clean benchmarks

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	bash scripts/run.sh

# DEBUG=true: settings load in development mode (plain http, unhashed static, the dev key); pytest-django
# still runs every test with DEBUG off, and production settings are tested in subprocesses.
test: install
	@# Import contracts first (.importlinter: the apps' layers, a Django-free core; under a second).
	$(VENV)/bin/lint-imports
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) TF_CPP_MIN_LOG_LEVEL=2 DEBUG=true \
		$(PY) -m pytest $(PYTEST_ARGS)
	@# The Zoo's tests again on SQLite, the database of `make run`, in a fresh file database (threads need a
	@# file). Left out: tests marked postgres_only, and the simulated crowd (2-3 min, statistics that do not
	@# depend on the database). On by default; a targeted run (PYTEST_ARGS given) skips it unless TEST_SQLITE=1.
	@if [ "$(TEST_SQLITE)" = 1 ]; then \
		tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && echo "== Zoo tests on SQLite ($$tmp) ==" && \
		DATABASE_URL=sqlite:///$$tmp/inclinet.sqlite3 VAR_DIR=$$tmp REDIS_URL=$(TEST_REDIS_URL) \
		TF_CPP_MIN_LOG_LEVEL=2 DEBUG=true $(PY) -m pytest labeling/tests -m "not postgres_only" \
			--deselect labeling/tests/test_crowd.py::test_calibrated_consensus_matches_the_oracle -q; \
	fi

# Train the quick-profile ensemble here (about 15 min on 2 idle cores) and make it active.
model: install
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) manage.py build_ensemble --profile quick --promote

clean:
	rm -rf var .pytest_cache

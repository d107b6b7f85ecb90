# IncliNET: `make run` starts the platform on embedded defaults; `make test` runs the whole suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/inclinet
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=

.PHONY: install run test model lint clean benchmarks

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	bash scripts/run.sh

test: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) TF_CPP_MIN_LOG_LEVEL=2 \
		$(PY) -m pytest $(PYTEST_ARGS)

# Train the quick-profile ensemble here (about 15 min on 2 idle cores) and make it active.
model: install
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) manage.py build_ensemble --profile quick --promote

clean:
	rm -rf var .pytest_cache

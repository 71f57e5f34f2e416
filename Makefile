# The two commands of the README: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo test check lint types imports clean stop

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(PY) examples/quickstart/run.py

check: lint types imports

lint: $(INSTALLED)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

types: $(INSTALLED)
	$(VENV)/bin/mypy

imports: $(INSTALLED)
	$(VENV)/bin/lint-imports

test: check
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

stop:
	@if [ -f .cairn-demo/server.lock ] && kill $$(cat .cairn-demo/server.lock) 2>/dev/null; then \
		echo "Stopped the demo server."; else echo "No demo server is running."; fi

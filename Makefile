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

# The demo's server listens on 127.0.0.1:$(PORT); `make demo PORT=8081` when 8080 is taken.
PORT ?= 8080

demo: $(INSTALLED)
	$(PY) examples/quickstart/run.py --port $(PORT)

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

# The PID in the lock file may be stale (a server killed outright leaves it behind), so it is
# signalled only if that process is `cairn server` with this very --home.
DEMO_HOME ?= $(CURDIR)/.cairn-demo
stop:
	@pid=$$(cat "$(DEMO_HOME)/server.lock" 2>/dev/null); \
	if [ -n "$$pid" ] && tr '\0' ' ' < /proc/$$pid/cmdline 2>/dev/null \
		| grep -Fq -- "/cairn server --home $(DEMO_HOME) " && kill "$$pid"; then \
		echo "Stopped the demo server."; else echo "No demo server is running."; fi

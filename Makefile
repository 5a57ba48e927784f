# One entry point for set-up, tests, the demo and the benchmarks. Every target creates what it needs.
SHELL := /bin/bash
PYTHON313 := $(shell scripts/find-python3.13)
VENV := .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv test lint demo bench evaluate clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 is required" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

lint: venv
	$(VENV)/bin/ruff check .

test: venv lint
	$(PY) -m pytest -q -n 2

demo: venv
	$(PY) -m monolith demo

evaluate: venv
	$(PY) -m monolith evaluate

bench: venv
	$(PY) -m monolith bench --json bench-output/media-bench.json

clean:
	rm -rf $(VENV) bench-output demo-output .pytest_cache

# camfleet: `make demo` runs the fleet on loopback, `make test` proves it.
# Each target creates .venv and installs the project when needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8080
DATA_DIR ?= ./demo-data
PYTEST_ARGS ?=
# Test files run on this many workers (pytest-xdist), each file whole on one worker so
# its module fixtures start once; 1 runs them in this process, one after another.
TEST_WORKERS ?= 2
FUZZ_CASES ?= 5000

.PHONY: demo test fuzz check bench format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/camfleet demo --port $(PORT) --data-dir $(DATA_DIR)

test: $(STAMP)
	@tests/preflight.sh
	$(PY) -m pytest $(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

# schemathesis against both APIs at FUZZ_CASES cases each (make test runs a smoke of it)
fuzz: $(STAMP)
	CAMFLEET_FUZZ_CASES=$(FUZZ_CASES) $(PY) -m pytest tests/test_schema_fuzz.py -s $(PYTEST_ARGS)

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

# `make bench ONLY=sync` runs one section (sync, offload, dashcam, metrics, idle) into the existing report
bench: $(STAMP)
	$(PY) -m bench.run $(if $(ONLY),--only $(ONLY))

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache

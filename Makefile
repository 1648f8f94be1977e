# The few targets people type. Each creates .venv if missing and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: run test test-fast check lint snapshots bench clean constraints

# Every install is pinned to the versions in constraints.txt, which the suite passed with,
# so a new release of TensorFlow, Keras or SymPy cannot break `make test` overnight.
CONSTRAINTS := constraints.txt

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(CONSTRAINTS) $(VENV)/.installed
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[test]'
	touch $@

run: $(VENV)/.installed  ## minimize the seed's default expression
	$(BIN)/autodiff minimize

test: $(VENV)/.installed-test  ## the whole test suite (what CI runs), in two processes; the 25 slowest at the end
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The tests that start no process of their own (no server, terminal, signal or cold start):
# about a minute less. `make test` stays the whole suite.
PROCESS_TESTS := test_server test_process test_terminal test_at_file_process
test-fast: $(VENV)/.installed-test  ## the in-process tests only
	$(BIN)/python -m pytest $(foreach t,$(PROCESS_TESTS),--ignore=tests/$(t).py)

snapshots: $(VENV)/.installed-test  ## rewrite the docs' examples, docs/json.md's schemas and the plot snapshots
	AUTODIFF_UPDATE_SNAPSHOTS=1 $(BIN)/python -m pytest -q tests/test_readme.py tests/test_plots.py

bench: $(VENV)/.installed-test  ## timings, as ratios measured side by side (not tests)
	$(BIN)/python benchmarks/run.py

check: lint  ## what CI runs before the tests: lint, format, types, the package's layout
	$(BIN)/mypy
	$(BIN)/python -m pytest -q tests/test_layout.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

constraints:  ## re-resolve the newest versions into constraints.txt; then run make test
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install -q -e '.[test]'
	{ sed -n '/^#/p' $(CONSTRAINTS); .venv-constraints/bin/python -m pip freeze --exclude-editable \
	  | grep -iv -e '^autodiffcli' -e '^#'; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf .venv-constraints

clean:
	rm -rf $(VENV) build src/*.egg-info

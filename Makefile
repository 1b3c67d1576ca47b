# Two entry points: `make demo` (the main job) and `make test` (what CI runs via .ci/run).
# `make lint` runs ruff alone; `make test-all` adds the slow tests; `make docs` builds the
# documentation site strictly; `make dist-check` checks the built sdist and wheel in a fresh
# venv with napari and PySide6 (slow: not part of `make test`; the GitHub workflow runs it as
# its own job). docs/development.md describes them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= out/demo.png
DEMO_ARGS ?= --size 384 --iterations 150
# The tests `make test` selects; the workflow's test jobs use the same expression
# (tests/test_publishing.py checks it) and its `slow` job runs the others.
FAST_TESTS := -m "not slow"

.PHONY: demo test test-all lint docs dist-check benchmark-quality clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Re-install when the package metadata changes.
$(VENV)/.installed: pyproject.toml src/napari_style_transfer/napari.yaml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[testing]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py -o $(DEMO_OUT) $(DEMO_ARGS)

test: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/python -m pytest $(FAST_TESTS)

# Everything, the slow checks too (the measured peak memory, the device check's CPU smoke run, bf16 vs fp32).
test-all: $(VENV)/.installed
	$(BIN)/python -m pytest

# The documentation site (mkdocs.yml) into build/site; a broken link or anchor fails it.
docs: $(VENV)/.installed
	$(BIN)/mkdocs build --strict

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

# Builds the sdist and the wheel (from the sdist), installs the wheel with napari and PySide6
# into a fresh venv under build/dist-check and there runs npe2 validate, a tiny CLI job and
# the widget docked under Xvfb with a tiny run.
dist-check: $(VENV)/.installed
	PYTHON=$(PYTHON) BUILD_PYTHON=$(BIN)/python bash .ci/dist-check build/dist-check

benchmark-quality: $(VENV)/.installed
	$(BIN)/python benchmarks/quality.py --size 256 --iterations 200 --out docs/images/quality

clean:
	rm -rf $(VENV) build dist out .pytest_cache .ruff_cache

# Two entry points: `make demo` (the main job) and `make test` (what CI runs via .ci/run).
# `make lint` adds the format check; `make dist-check` checks the built sdist and wheel in a
# fresh venv (slow: not part of `make test`; the GitHub workflow runs it as its own job).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= out/demo.png
DEMO_ARGS ?= --size 384 --iterations 150

.PHONY: demo test lint dist-check benchmark-quality clean

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
	$(BIN)/python -m pytest -m "not slow"

# Everything, the slow checks too (the measured peak memory, the device check's CPU smoke run, bf16 vs fp32).
test-all: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

# Builds the sdist and the wheel (from the sdist), installs the wheel into a fresh venv under
# build/dist-check and there runs npe2 validate, a tiny CLI job and the widget under Xvfb.
dist-check: $(VENV)/.installed
	PYTHON=$(PYTHON) BUILD_PYTHON=$(BIN)/python bash .ci/dist-check build/dist-check

benchmark-quality: $(VENV)/.installed
	$(BIN)/python benchmarks/quality.py --size 256 --iterations 200 --out docs/images/quality

clean:
	rm -rf $(VENV) build dist out .pytest_cache .ruff_cache

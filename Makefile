# Each target sets itself up: the first run creates .venv and installs the project
# with its dev extras; later runs reinstall only when pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cleveragents-audit demo

lint: $(STAMP)
	$(BIN)/ruff check src tests features benchmarks
	$(BIN)/ruff format --check src tests features benchmarks
	$(BIN)/mypy --strict src

test: lint
	$(BIN)/behave --format progress features
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/asv machine --yes > /dev/null
	$(BIN)/asv run --python=same --show-stderr

clean:
	rm -rf $(VENV) .asv .pytest_cache .mypy_cache .ruff_cache .hypothesis

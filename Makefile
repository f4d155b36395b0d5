# Every target bootstraps .venv itself: created when missing, reinstalled when
# pyproject.toml or constraints.txt changed since the last install.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.PHONY: run test lint bench clean-data lock

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/boxoffice up

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests migrations tools
	$(BIN)/ruff format --check src tests migrations tools
	$(BIN)/mypy
	$(BIN)/python tools/check_house.py

bench: $(STAMP)
	$(BIN)/boxoffice bench flash-sale --users 5000 --seats 1000

# Regenerate the pinned versions from what is installed in .venv.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean-data:
	rm -rf .boxoffice

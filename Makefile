# Every target bootstraps .venv itself: created when missing, reinstalled when
# pyproject.toml or constraints.txt changed since the last install.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.PHONY: run test lint bench proto clean-data lock

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

# The gRPC stubs are generated from the .proto and committed (CI regenerates and fails on a diff).
PROTO := src/boxoffice/grpc/ticket.proto
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Isrc --python_out=src --pyi_out=src --grpc_python_out=src $(PROTO)

bench: $(STAMP)
	$(BIN)/boxoffice bench flash-sale --users 5000 --seats 1000

# Regenerate the pinned versions from what is installed in .venv.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean-data:
	rm -rf .boxoffice

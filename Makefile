# Two commands a new user needs: `make demo` and `make test`. Each sets up what it needs by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml scripts/test-deps.sh scripts/conformance-deps.sh tests/conformance/package-lock.json 2>/dev/null | sha256sum | cut -c1-12)

.PHONY: demo test lint bench setup install system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	if [ -f scripts/test-deps.sh ]; then bash scripts/test-deps.sh $(BIN)/python; fi
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/opsgate demo
	@echo "opsgate is at $(abspath $(BIN))/opsgate (\`make install\` links it into ~/.local/bin)"

# `opsgate` on PATH from any folder: a link in $(BINDIR) to this clone's .venv/bin/opsgate.
BINDIR ?= $(HOME)/.local/bin
install: $(STAMP)
	bash scripts/install-bin.sh $(abspath $(BIN))/opsgate $(BINDIR)

system-deps:
	bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check servers tests bench examples deploy
	$(BIN)/ruff format --check servers tests bench examples deploy
	$(BIN)/mypy

test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

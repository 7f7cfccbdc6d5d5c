# The two set-up commands are `make demo` and `make test`; both create .venv when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTOS := $(wildcard proto/childreg/v1/*.proto)

.PHONY: demo test check bench proto proto-check lint typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/childreg demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

check: $(STAMP) lint typecheck proto-check

lint: $(STAMP)
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/childreg bench

proto: $(STAMP)
	$(BIN)/python -m tools.protogen --out .

proto-check: $(STAMP)
	$(BIN)/python -m tools.protogen --check

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache

# The two set-up commands are `make demo` and `make test`; both create .venv when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check bench proto proto-check lint typecheck docstrings i18n i18n-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/childreg demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

check: $(STAMP) lint typecheck proto-check docstrings i18n-check

lint: $(STAMP)
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Every test states its behaviour in a one-sentence docstring.
docstrings: $(STAMP)
	$(BIN)/python -m tools.dev.test_docstrings tests

# The translation catalogs: `make i18n` after changing messages; the check fails while a
# complete language (English, Russian, Azerbaijani) lacks a translation.
i18n: $(STAMP)
	$(BIN)/python -m tools.dev.i18n update

i18n-check: $(STAMP)
	$(BIN)/python -m tools.dev.i18n check

bench: $(STAMP)
	$(BIN)/childreg bench

proto: $(STAMP)
	$(BIN)/python -m tools.dev.protogen --out .

proto-check: $(STAMP)
	$(BIN)/python -m tools.dev.protogen --check

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache

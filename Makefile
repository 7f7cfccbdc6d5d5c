# The two set-up commands are `make demo` and `make test`; both create .venv when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The bulk import's hot modules, compiled with mypyc (see node/native.py and setup.py).
NATIVE := $(VENV)/.native
NATIVE_SOURCES := node/aead.py node/convert.py node/records.py node/native.py setup.py \
	childreg/codes.py childreg/errors.py childreg/models.py childreg/v1/records_pb2.pyi \
	childreg/v1/statistics_pb2.pyi node/keys.py node/privacy.py node/store/base.py
PROTOS := $(wildcard proto/childreg/v1/*.proto)

.PHONY: demo test check bench proto proto-check lint typecheck clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CHILDREG_PURE=1 $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Compiled in place with the installed mypy, packages and configuration; rebuilt whenever
# a compiled source or a file it depends on changes (a stale build never runs:
# node/native.py). CHILDREG_PURE=1 skips compiling and leaves the mark unset.
$(NATIVE): $(STAMP) $(NATIVE_SOURCES)
ifeq ($(CHILDREG_PURE),1)
	@echo "CHILDREG_PURE=1: the import's modules run interpreted (not compiled)"
else
	@echo "compiling the import's hot modules with mypyc (about 20 s)"
	$(BIN)/python setup.py --quiet build_ext --inplace
	touch $(NATIVE)
endif

demo: $(NATIVE)
	$(BIN)/childreg demo

test: $(NATIVE)
	$(BIN)/python -m pytest -q

check: $(STAMP) lint typecheck proto-check

lint: $(STAMP)
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(NATIVE)
	$(BIN)/childreg bench

proto: $(STAMP)
	$(BIN)/python -m tools.protogen --out .

proto-check: $(STAMP)
	$(BIN)/python -m tools.protogen --check

clean:
	rm -rf $(VENV) build *.egg-info *.so node/*.so node/native-build.json .mypy_cache .pytest_cache .ruff_cache

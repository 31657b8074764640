# The two set-up commands: `make run` (start the API) and `make test` (the linters, then the suite);
# `make check` runs the linters alone (ruff, mypy over forecasting, forecasting.api, forecasting.benchmarks). All create .venv when missing and (re)install the project only when
# pyproject.toml changed.
PYTHON ?= python3
VENV   ?= .venv
HOST   ?= 127.0.0.1
PORT   ?= 8000
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test check typecheck lint install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,deep,onnx,distributed,lightgbm,prophet]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/forecasting serve --host $(HOST) --port $(PORT)

test: install check
	$(PY) -m pytest $(PYTEST_ARGS)

# mypy over the library, the service and the harness as one package (pyproject's [tool.mypy]: api/ and
# benchmarks/ are seen as forecasting.api and forecasting.benchmarks through .typecheck/forecasting/);
# their messages are mapped back to the repository's paths.
typecheck: install
	@mkdir -p .mypy_cache; $(PY) -m mypy > .mypy_cache/make-typecheck.out 2>&1; status=$$?; \
	  sed -e 's#^\.typecheck/forecasting/api/#api/#' -e 's#^\.typecheck/forecasting/benchmarks/#benchmarks/#' \
	  .mypy_cache/make-typecheck.out; exit $$status

lint: install
	$(VENV)/bin/ruff check --output-format concise .

# both linters run (and report) even when the first fails
check: install
	@status=0; $(MAKE) --no-print-directory lint || status=1; $(MAKE) --no-print-directory typecheck || status=1; \
	  exit $$status

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache

# Both front-door targets build the virtual environment themselves, so a fresh
# clone needs nothing but python3 (>= 3.11) on the PATH.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint venv bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The quickstart: the whole product story, every step printed as the command a
# user would type. DEMO_DIR=path keeps the result somewhere you choose.
demo: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/lensvault quickstart $(DEMO_DIR)

# PostgreSQL is started here (a throwaway cluster) and stopped afterwards, and Debian's
# Chromium installed if missing (the browser tests), so CI on a clean machine tests both
# catalog backends and the web UI without manual set-up. Azurite (Azure Storage's emulator) is
# installed from npm under .cache/ once; the az:// remote tests start it on a loopback port.
# The suite runs on PYTEST_WORKERS processes (pytest-xdist; 2 = this machine's cores): much of
# it waits on subprocesses, servers and PostgreSQL, so two workers keep both cores busy.
# `make test PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= 2
test: $(STAMP) lint
	scripts/with-chromium.sh scripts/with-azurite.sh scripts/with-postgres.sh $(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# Ruff over all Python in the repository; mypy over the package (the files and the strictness
# per package are in pyproject.toml). Both must be clean: `make test` runs this first. Narrow it
# while working on one part, e.g.
#   make lint RUFF_PATHS=src/lensvault/annotations MYPY_ARGS="--follow-imports=silent src/lensvault/annotations"
RUFF_PATHS ?= src tests benchmarks
MYPY_ARGS  ?=
lint: $(STAMP)
	$(VENV)/bin/ruff check $(RUFF_PATHS)
	$(VENV)/bin/mypy $(MYPY_ARGS)

bench: $(STAMP)
	benchmarks/setup.sh
	.venv-bench/bin/python benchmarks/core_vs_dvc.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

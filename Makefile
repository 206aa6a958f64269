# The two commands a newcomer needs: `make demo` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export DAGSTER_HOME := $(CURDIR)
export DO_NOT_TRACK := 1
export PYTHONUNBUFFERED := 1

.PHONY: install demo dev evidently test test-fast lint bench bench-quality screenshots clean

# Python caches the bytecode of what it imports (in the venv and the repo's __pycache__ folders, both
# git-ignored) even where the environment says not to (PYTHONDONTWRITEBYTECODE, as on this project's
# machines): without the cache every process of the demo (code server, runs, report workers) compiled
# dagster, mlflow and evidently from source again (demo 462 s instead of 391 s). Cached on first import,
# not compiled up front at install (uv's --compile-bytecode): that compiles the whole lock, ~60 s on 2 cores,
# to serve the modules a run imports, which the first import compiles in a few seconds.
unexport PYTHONDONTWRITEBYTECODE

# A locked install: the venv holds exactly what uv.lock says, from the package registries. One stamp
# for both targets: `make demo` and `make test` share one exact environment.
$(BIN)/.installed: pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --extra dev --python $(BIN)/python
	touch $@

install: $(BIN)/.installed

demo: install  ## simulate, ingest, train, score and monitor on embedded defaults
	$(BIN)/claims-platform demo

dev: install  ## the Dagster UI on http://127.0.0.1:3000 and the MLflow UI on http://127.0.0.1:5000, on what the demo wrote; Ctrl-C stops both
	$(BIN)/python -m claims_platform.cli.dev --host 127.0.0.1 --dagster-port 3000 --mlflow-port 5000

evidently: install  ## Evidently's UI on http://127.0.0.1:8000: the daily drift snapshots as a time series
	$(BIN)/evidently ui --workspace "$${CLAIMS_EVIDENTLY_WORKSPACE:-.local/evidently}" --host 127.0.0.1 --port 8000

# Three workers on two cores: the slowest tests mostly wait (a daemon's tick, a server starting, a run in a
# subprocess), so a third file in flight cut the whole suite from 19.6 to 14.8 minutes on this 2-core machine
# (2026-12-08, same tests, CPU use 132% both ways). --dist loadfile: a module's world is built once.
test: install  ## the whole suite: it starts its own PostgreSQL (when none answers) and S3 API server
	@test -x /usr/bin/chromium || echo "note: the browser test (claims_platform_tests/ui) needs Debian's chromium and is skipped without it: sudo apt-get install chromium"
	$(BIN)/pytest -n 3 --dist loadfile -q -rs

test-fast: install  ## the pure and asset layers (no servers, no subprocess worlds): ~80 s on 2 cores
	$(BIN)/pytest -n 2 --dist loadfile -q -rs -m "not integration and not slow"

lint: install  ## ruff (rules and format) and the layers (import-linter: no import runs back up)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

bench: install  ## performance figures -> bench/results.json and bench/results.md (all but the quality bench)
	$(BIN)/python -m bench.run

bench-quality: install  ## decision quality over worlds, training lengths and volumes (up to an hour on 2 cores; BENCH_QUICK=1: minutes) -> bench/results.*
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m bench.run quality

screenshots: install  ## README's pictures of the UI -> docs/screenshots/*.png (needs Debian's chromium)
	$(BIN)/python -m claims_platform_tests.ui.screenshots docs/screenshots

clean:
	rm -rf .local $(VENV)

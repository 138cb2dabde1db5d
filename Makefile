# The project's commands. `make run` and `make test` are all a new user needs (README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# The sandbox behind `make run` / `make dev`: enforced limits equal to the job's defaults, some realistic noise.
ACCOUNTS ?= 2000
SEED ?= 7
RATE_LIMIT ?= 50
MAX_IN_FLIGHT ?= 16
SANDBOX_ARGS ?= --accounts $(ACCOUNTS) --seed $(SEED) --rate-limit $(RATE_LIMIT) --max-in-flight $(MAX_IN_FLIGHT) \
	--latency-ms 20 --transient-error-rate 0.02 --partial-rate 0.03 --failure-rate 0.01
export ESG_RATE_LIMIT_PER_SECOND ?= $(RATE_LIMIT)
export ESG_MAX_IN_FLIGHT ?= $(MAX_IN_FLIGHT)

.PHONY: install run dev test test-fast lint ops-check bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,sandbox]'
	touch $@

install: $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/python scripts/with_sandbox.py run -- $(SANDBOX_ARGS)

dev: $(INSTALLED)
	$(BIN)/python scripts/with_sandbox.py dev -- $(SANDBOX_ARGS)

# The whole suite: unit, integration and e2e tests (the tiers are pytest markers, see pyproject.toml), in
# TEST_WORKERS pytest-xdist processes, each taking whole test files (a module's fixtures start once), those with
# e2e tests first (esg_assets_tests/conftest.py). 3 on 2 cores: most tests wait on servers, processes and
# sleeps, not the CPU (measured: README, "Layout"). TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 3
test: $(INSTALLED)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The unit tier only: no servers, subprocesses, Dagster runs or databases; well under a minute. In one process:
# it is all CPU, and two workers' start-up made it slower (measured).
test-fast: $(INSTALLED)
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

# ruff (style, imports, no Dagster internals) and lint-imports (the layers of docs/architecture.md).
lint: $(INSTALLED)
	$(BIN)/ruff check esg_assets esg_assets_tests bench scripts
	$(BIN)/lint-imports

# The Prometheus rules of ops/: promtool (Debian package prometheus) checks them and runs their unit tests.
# Fails when promtool is missing: .ci/run installs it; `make test` runs the same through pytest, skipping without it.
ops-check:
	promtool check rules ops/prometheus/esg-alerts.yml
	cd ops/prometheus && promtool test rules esg-alerts.test.yml

# The benchmark of docs/performance.md; e.g. make bench BENCH_ARGS="--accounts 100000 --rate-limit 500 --max-in-flight 64"
BENCH_ARGS ?= --accounts 10000 --rate-limit 50 --then full-refresh --then next-day
bench: $(INSTALLED)
	$(BIN)/python bench/run_bench.py $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache

# One way to install and run everything. `make demo` and `make test` do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PACKAGES := connector-common emulators tap-kaon-insights tap-kahuna-logs tap-duckdb target-kissmetrics
# The Dagster code location: in .venv beside Meltano (it runs `meltano`), never in a plugin's environment.
ORCHESTRATION := orchestration
STAMP := $(VENV)/.installed
PIP_INSTALL := $(PIP) install --quiet --disable-pip-version-check
# Every meltano command of the Makefile, cron and Dagster: a private .meltano/run per run (scripts/isolated_meltano.py).
MELTANO_RUN := $(PY) scripts/isolated_meltano.py
KK_PG_PORT ?= 55432
# Meltano's system database for sharded runs: the local server's kk_meltano (scripts/postgres.sh creates it).
KK_MELTANO_DATABASE_URI ?= postgresql+psycopg://kk:kk-dev-password@127.0.0.1:$(KK_PG_PORT)/kk_meltano

.PHONY: help venv lint format test test-fast demo bench clean meltano-install postgres postgres-stop snowflake-check-venv run dagster-dev chromium

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt $(foreach p,$(PACKAGES) $(ORCHESTRATION),$(p)/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -r requirements-dev.txt $(foreach p,$(PACKAGES) $(ORCHESTRATION),-e ./$(p))
	# The official Kissmetrics client pins urllib3<2; its query builder needs nothing, so it comes without deps.
	$(PIP_INSTALL) --no-deps "py-KISSmetrics==1.1.0"
	# Dagster's gql (via dagster-graphql) requires `backoff`, whose files overwrite python-backoff's (one module,
	# `backoff`, two distributions); singer-sdk and the plugins need python-backoff (as in their own venvs), and
	# gql uses only on_exception and expo, which it keeps: reinstalled last, its files win.
	$(PIP_INSTALL) --force-reinstall --no-deps "python-backoff>=2.2.2,<4"
	touch $(STAMP)

venv: $(STAMP) ## Create .venv with the plugins (editable), the emulators, the Dagster code location and the dev tools

# Meltano installs each plugin into .meltano/ with uv (a dependency of meltano, in .venv/bin).
# .meltano/ only works at the absolute path it was installed at: the stamp holds that path.
MELTANO_STAMP := .meltano/.installed
MELTANO_MOVED := $(shell test "$$(cat $(MELTANO_STAMP) 2>/dev/null)" = "$(CURDIR)" || echo force-meltano-install)
.PHONY: force-meltano-install
$(MELTANO_STAMP): $(STAMP) meltano.yml plugins.meltano.yml $(foreach p,$(PACKAGES),$(p)/pyproject.toml) $(MELTANO_MOVED)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/meltano install
	# uv (meltano install's installer) writes no bytecode, and where PYTHONDONTWRITEBYTECODE is set nothing caches
	# it later: every tap, target and dbt start compiled singer-sdk, SQLAlchemy and the rest again (target-postgres
	# 1.4 s to import instead of 0.6 s). Compile the plugins' venvs and the editable sources once
	# (tests/packaging/test_plugin_bytecode.py checks every module).
	$(VENV)/bin/python -m compileall -q -j 0 .meltano/*/*/venv/lib $(PACKAGES)
	# The dev warehouse's folder (target-duckdb creates none): plain `meltano run` works from the first run.
	mkdir -p output
	echo "$(CURDIR)" > $(MELTANO_STAMP)

meltano-install: $(MELTANO_STAMP) ## Install the Meltano project's plugins into .meltano/ (offline-safe, no Hub)

# KK_PG_PORT moves the local PostgreSQL (scripts/postgres.sh) and every plugin that opens it.
export KK_PG_PORT
export TAP_POSTGRES_PORT := $(KK_PG_PORT)
export TARGET_POSTGRES_PORT := $(KK_PG_PORT)
export DBT_POSTGRES_PORT := $(KK_PG_PORT)
# dbt-snowflake on fakesnow for the offline Snowflake checks of the dbt project (no account is reachable here).
# Its own venv, made with the uv that comes with meltano: fakesnow needs duckdb 2, the warehouse plugins 1.2.2.
SNOWFLAKE_CHECK_VENV := .venv-snowflake-check
SNOWFLAKE_CHECK_REQUIREMENTS := tests/transform/requirements-snowflake-check.txt
$(SNOWFLAKE_CHECK_VENV)/.installed: $(STAMP) $(SNOWFLAKE_CHECK_REQUIREMENTS)
	$(VENV)/bin/uv venv --quiet --allow-existing --python $(PY) $(SNOWFLAKE_CHECK_VENV)
	VIRTUAL_ENV=$(CURDIR)/$(SNOWFLAKE_CHECK_VENV) $(VENV)/bin/uv pip install --quiet --compile-bytecode \
		-r $(SNOWFLAKE_CHECK_REQUIREMENTS)
	touch $@

snowflake-check-venv: $(SNOWFLAKE_CHECK_VENV)/.installed ## dbt-snowflake + fakesnow for the offline Snowflake checks

postgres: ## Start PostgreSQL on 127.0.0.1:$$KK_PG_PORT (default 55432; installs it with apt-get when missing)
	scripts/postgres.sh

postgres-stop: ## Stop the PostgreSQL that make postgres started on $$KK_PG_PORT (its data is kept)
	scripts/postgres.sh stop

TYPED_PACKAGES := connector_common tap_kaon_insights tap_kahuna_logs tap_duckdb target_kissmetrics emulators kk_orchestration

lint: venv ## ruff check, ruff format --check and mypy over every package
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(foreach p,$(TYPED_PACKAGES),-p $(p))

format: venv ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

chromium: ## Headless Chromium for the report's rendering test (installs Debian's package with apt-get when missing)
	scripts/chromium.sh

test: venv lint meltano-install postgres snowflake-check-venv chromium ## Lint, then run every test (installs what the tests need)
	$(PY) -m pytest

test-fast: venv snowflake-check-venv ## Tests without the Meltano and PostgreSQL end-to-end suites
	$(PY) -m pytest -m "not meltano and not postgres"

demo: venv meltano-install ## The main job: emulators -> taps -> DuckDB (twice, incremental) -> Kissmetrics
	$(PY) scripts/demo.py

run: venv meltano-install ## Run one Meltano job safely beside others: make run JOB=kahuna-to-warehouse [ENV=prod]
	@test -n "$(JOB)" || { echo "make run: name the job, e.g. make run JOB=kahuna-to-warehouse"; exit 2; }
	$(MELTANO_RUN) --environment $(or $(ENV),dev) run $(JOB)

# The dev environment's warehouse on the same server as the system database (KK_PG_PORT moves both).
DEV_WAREHOUSE := TARGET_POSTGRES_PORT=$(KK_PG_PORT) TAP_POSTGRES_PORT=$(KK_PG_PORT) DBT_POSTGRES_PORT=$(KK_PG_PORT)

# KK_DAGSTER_PORT moves Dagster's UI; the emulators' and PostgreSQL's variables reach every run it starts.
KK_DAGSTER_PORT ?= 3000

dagster-dev: venv meltano-install postgres ## Dagster's UI and daemon on http://127.0.0.1:$$KK_DAGSTER_PORT (default 3000)
	@if (exec 3<>"/dev/tcp/127.0.0.1/$(KK_DAGSTER_PORT)") 2>/dev/null; then \
		echo "make dagster-dev: 127.0.0.1:$(KK_DAGSTER_PORT) is in use: stop what listens there or set KK_DAGSTER_PORT to a free port, e.g. KK_DAGSTER_PORT=$$(( $(KK_DAGSTER_PORT) + 1 )) make dagster-dev" >&2; \
		exit 1; \
	fi
	mkdir -p output/dagster
	# One dbt build per warehouse at once, one DuckDB writer: the pools' limits live in the instance.
	DAGSTER_HOME="$${DAGSTER_HOME:-$(CURDIR)/output/dagster}" $(PY) -m kk_orchestration.pools
	DAGSTER_HOME="$${DAGSTER_HOME:-$(CURDIR)/output/dagster}" \
	MELTANO_DATABASE_URI="$${MELTANO_DATABASE_URI:-$(KK_MELTANO_DATABASE_URI)}" $(DEV_WAREHOUSE) \
		$(VENV)/bin/dagster dev -m kk_orchestration.definitions -h 127.0.0.1 -p $(KK_DAGSTER_PORT)

BENCHMARKS := emulator_throughput tap_kaon_concurrency tap_kaon_readings tap_kahuna_concurrency tap_kahuna_readings target_kissmetrics_throughput reliability_load pipeline warehouse_loop orchestration_shards

bench: venv meltano-install postgres ## Run every benchmark (tens of minutes) and print their figures; see bench/README.md
	set -e; for name in $(BENCHMARKS); do echo "== bench/$$name.py"; $(PY) bench/$$name.py; done

clean: ## Remove the venv, Meltano's install, outputs
	rm -rf $(VENV) $(SNOWFLAKE_CHECK_VENV) .meltano output state .pytest_cache

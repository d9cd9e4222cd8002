# One way to install and run everything. `make demo` and `make test` do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PACKAGES := connector-common emulators tap-kaon-insights tap-kahuna-logs tap-duckdb target-kissmetrics
STAMP := $(VENV)/.installed
PIP_INSTALL := $(PIP) install --quiet --disable-pip-version-check

.PHONY: help venv lint format test test-fast demo bench clean meltano-install postgres snowflake-check-venv

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -r requirements-dev.txt $(foreach p,$(PACKAGES),-e ./$(p))
	# The official Kissmetrics client pins urllib3<2; its query builder needs nothing, so it comes without deps.
	$(PIP_INSTALL) --no-deps "py-KISSmetrics==1.1.0"
	touch $(STAMP)

venv: $(STAMP) ## Create .venv with the plugins (editable), the emulators and the dev tools

# Meltano installs each plugin into .meltano/ with uv (a dependency of meltano, in .venv/bin).
# .meltano/ only works at the absolute path it was installed at: the stamp holds that path.
MELTANO_STAMP := .meltano/.installed
MELTANO_MOVED := $(shell test "$$(cat $(MELTANO_STAMP) 2>/dev/null)" = "$(CURDIR)" || echo force-meltano-install)
.PHONY: force-meltano-install
$(MELTANO_STAMP): $(STAMP) meltano.yml plugins.meltano.yml $(foreach p,$(PACKAGES),$(p)/pyproject.toml) $(MELTANO_MOVED)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/meltano install
	echo "$(CURDIR)" > $(MELTANO_STAMP)

meltano-install: $(MELTANO_STAMP) ## Install the Meltano project's plugins into .meltano/ (offline-safe, no Hub)

# KK_PG_PORT moves the local PostgreSQL (scripts/postgres.sh) and every plugin that opens it.
ifdef KK_PG_PORT
export TAP_POSTGRES_PORT := $(KK_PG_PORT)
export TARGET_POSTGRES_PORT := $(KK_PG_PORT)
endif
# dbt-snowflake on fakesnow for the offline Snowflake checks of the dbt project (no account is reachable here).
# Its own venv, made with the uv that comes with meltano: fakesnow needs duckdb 2, the warehouse plugins 1.2.2.
SNOWFLAKE_CHECK_VENV := .venv-snowflake-check
SNOWFLAKE_CHECK_REQUIREMENTS := tests/transform/requirements-snowflake-check.txt
$(SNOWFLAKE_CHECK_VENV)/.installed: $(STAMP) $(SNOWFLAKE_CHECK_REQUIREMENTS)
	$(VENV)/bin/uv venv --quiet --allow-existing --python $(PY) $(SNOWFLAKE_CHECK_VENV)
	VIRTUAL_ENV=$(CURDIR)/$(SNOWFLAKE_CHECK_VENV) $(VENV)/bin/uv pip install --quiet -r $(SNOWFLAKE_CHECK_REQUIREMENTS)
	touch $@

snowflake-check-venv: $(SNOWFLAKE_CHECK_VENV)/.installed ## dbt-snowflake + fakesnow for the offline Snowflake checks

postgres: ## Start PostgreSQL on 127.0.0.1:$$KK_PG_PORT (default 55432; installs it with apt-get when missing)
	scripts/postgres.sh

TYPED_PACKAGES := connector_common tap_kaon_insights tap_kahuna_logs target_kissmetrics emulators

lint: venv ## ruff check, ruff format --check and mypy over every package
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(foreach p,$(TYPED_PACKAGES),-p $(p))

format: venv ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: venv lint meltano-install postgres snowflake-check-venv ## Lint, then run every test (installs what the tests need)
	$(PY) -m pytest

test-fast: venv snowflake-check-venv ## Tests without the Meltano and PostgreSQL end-to-end suites
	$(PY) -m pytest -m "not meltano and not postgres"

demo: venv meltano-install ## The main job: emulators -> taps -> DuckDB (twice, incremental) -> Kissmetrics
	$(PY) scripts/demo.py

BENCHMARKS := emulator_throughput tap_kaon_concurrency tap_kahuna_concurrency target_kissmetrics_throughput reliability_load pipeline warehouse_loop

bench: venv meltano-install ## Run every benchmark (tens of minutes) and print their figures; see bench/README.md
	set -e; for name in $(BENCHMARKS); do echo "== bench/$$name.py"; $(PY) bench/$$name.py; done

clean: ## Remove the venv, Meltano's install, outputs
	rm -rf $(VENV) $(SNOWFLAKE_CHECK_VENV) .meltano output state .pytest_cache

# The two entry points a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Persistent, git-ignored instance: run history, schedules and sensors survive restarts.
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
HOST := 127.0.0.1
PORT := 3000
# The outputs folder (LMS_OUTPUT_DIR: the study report, charts) served read-only on HOST beside the UI.
REPORT_PORT ?= 3001

.PHONY: install system-deps system-deps-run run test lint materialize clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --quiet --upgrade pip

# The package is installed again only when what it is built from changes: the stamp is newer than both files.
# pip shows errors only (--quiet twice): a machine's own index settings otherwise print a warning per package.
# The source itself needs no reinstall (an editable install). The filter hides setuptools' "Editable
# installation" notice, printed on every editable build even with --quiet.
INSTALLED := $(VENV)/.installed
$(INSTALLED): pyproject.toml constraints.txt $(BIN)/python
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(INSTALLED)

# The instance template sits in deploy/local/: in the repo root `dagster dev` would warn it "will not be used".
INSTANCE_TEMPLATE := deploy/local/dagster.yaml
$(DAGSTER_HOME)/dagster.yaml: $(INSTANCE_TEMPLATE)
	mkdir -p $(DAGSTER_HOME)
	cp $(INSTANCE_TEMPLATE) $(DAGSTER_HOME)/dagster.yaml

# Creates the instance's storage once: two first runs would race to create it (lms_assets/infra/recovery.py).
.PHONY: instance
instance: install $(DAGSTER_HOME)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/python -m lms_assets.infra.recovery

# `dagster dev` through lms_assets/infra/launcher.py: on Ctrl-C or SIGTERM every process it started (webserver,
# daemon, code servers, run workers) is gone within 10 s, and make reports no error; `dagster dev` alone can take
# minutes. The launcher also serves the outputs folder on REPORT_PORT and tells Dagster so (LMS_REPORT_URL).
run: instance system-deps-run
	DAGSTER_HOME=$(DAGSTER_HOME) exec $(BIN)/python -m lms_assets.infra.launcher --report-port $(REPORT_PORT) -h $(HOST) -p $(PORT)

materialize: instance
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster asset materialize -m lms_assets.definitions --select '*'

# Debian packages, installed only when missing. `make run` needs R with survival: the independent R cross-check
# asset runs `lms_assets/audit/survival_check.R` (about 40 MB). The end-to-end tests also drive Chromium
# (browser tests; nothing downloads a browser) and PostgreSQL (the shared-deployment test).
RUN_PACKAGES := r-base-core r-cran-survival
SYSTEM_PACKAGES := $(RUN_PACKAGES) chromium postgresql
define install_missing
missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef
system-deps-run:
	@$(call install_missing,$(RUN_PACKAGES))
system-deps:
	@$(call install_missing,$(SYSTEM_PACKAGES))

# Two workers and the slow tests first (pyproject.toml, conftest.py); the durations show where the time went.
test: install system-deps
	$(BIN)/python -m pytest -q --durations=15

# Lint, format check and type check; configured in pyproject.toml ([tool.ruff], [tool.mypy]). The same three
# run as pre-commit hooks (.pre-commit-config.yaml). `$(BIN)/ruff format` and `$(BIN)/ruff check --fix` repair
# most of what the first two report.
LINT_PATHS := lms_assets lms_assets_tests benchmarks
lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data/warehouse outputs test-artifacts .mypy_cache .ruff_cache

# The team deployment (docs/deployment.md): webserver and daemon over a PostgreSQL-backed instance.
# Needs DAGSTER_HOME and LMS_PG_HOST, LMS_PG_PORT, LMS_PG_DB, LMS_PG_USER, LMS_PG_PASSWORD in the environment.
.PHONY: run-team
run-team: install
	$(BIN)/python -m lms_assets.infra.deploy start --host $(HOST) --port $(PORT) --report-port $(REPORT_PORT)

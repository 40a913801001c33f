# Developer entry points for harbor-scanner-sysdig. Every target that runs
# the project first makes sure .venv exists and holds the current install.
#
# DATABASE_URL, RABBITMQ_URL and the other settings reach the commands
# unchanged, whether they come from the shell or from the make command line
# (`make test DATABASE_URL=...`): make exports both kinds to recipes.

PYTHON ?= python3
VENV ?= .venv
VENV_BIN := $(VENV)/bin
# Records that the venv holds an install of the current pyproject.toml.
INSTALL_STAMP := $(VENV)/.install-stamp

API_HOST ?= 127.0.0.1
API_PORT ?= 8080
PYTEST_ARGS ?=

# Exits with one message unless the interpreter $(1) exists and is Python 3.11+.
define require_python_311
	@command -v $(1) >/dev/null \
		|| { echo "$(1) not found. Install Python 3.11 or newer, or point PYTHON at one: make PYTHON=python3.12 venv" >&2; exit 1; }
	@$(1) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "$(1) is Python " + sys.version.split()[0] + ", but this project needs 3.11 or newer. Point PYTHON at a newer interpreter (make PYTHON=python3.12 venv), after make clean if .venv was made with the old one.")'
endef

.DEFAULT_GOAL := help
.PHONY: help venv demo test serve worker migrate clean

help: ## List the targets
	@echo "Usage: make TARGET [PYTHON=python3] [PYTEST_ARGS='-k name'] [API_HOST=127.0.0.1] [API_PORT=8080]"
	@echo
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "}; {printf "  %-9s %s\n", $$1, $$2}'

venv: $(INSTALL_STAMP) ## Create .venv and install the package with its test extras

$(VENV_BIN)/python:
	$(call require_python_311,$(PYTHON))
	$(PYTHON) -m venv $(VENV) \
		|| { echo "'$(PYTHON) -m venv' failed. On Debian or Ubuntu install the python3-venv package." >&2; exit 1; }

# Re-installs whenever pyproject.toml is newer than the stamp, so a changed
# dependency list reaches the venv without a manual step.
$(INSTALL_STAMP): pyproject.toml | $(VENV_BIN)/python
	$(call require_python_311,$(VENV_BIN)/python)
	$(VENV_BIN)/python -m pip install --disable-pip-version-check --quiet -e '.[test]'
	@touch $@

demo: venv ## Run the offline demo against local test doubles
	$(VENV_BIN)/harbor-scanner-sysdig demo

# pytest exits 5 when it collected no tests. That already fails the recipe,
# but its own output is easy to miss, so say it plainly.
test: venv ## Run the test suite (needs PostgreSQL and RabbitMQ; see DATABASE_URL, RABBITMQ_URL)
	$(VENV_BIN)/python -m pytest -q $(PYTEST_ARGS) || { status=$$?; \
		if [ $$status -eq 5 ]; then echo "pytest collected no tests (exit status 5): check PYTEST_ARGS and the tests/ folder." >&2; fi; \
		exit $$status; }

serve: venv ## Run the API on API_HOST:API_PORT (default 127.0.0.1:8080)
	$(VENV_BIN)/harbor-scanner-sysdig serve --host $(API_HOST) --port $(API_PORT)

worker: venv ## Run the Dramatiq worker that performs scans
	$(VENV_BIN)/harbor-scanner-sysdig worker

migrate: venv ## Apply the database migrations to DATABASE_URL
	$(VENV_BIN)/harbor-scanner-sysdig migrate

clean: ## Remove .venv, build output, caches, demo data and embedded PostgreSQL data
	rm -rf $(VENV) build .demo .pgdata .pytest_cache *.egg-info
	find . -type d -name __pycache__ -prune -exec rm -rf {} +

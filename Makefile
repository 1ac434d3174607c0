# Two commands: `make run` (demo on http://127.0.0.1:8000) and `make test` (lint + the whole suite).
# Both start a private PostgreSQL/Redis when none is configured: see helpdesk/embedded.py.

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# python3.11, or python3 when that is 3.11.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || \
	(python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && command -v python3))
# The tools (honcho, uvicorn, celery, ruff, pytest) come from the venv.
WITH_VENV := env PATH="$(BIN):$$PATH"

# make run, after the servers are up: schema, static files, demo data (first run only), then the
# web server, the realtime service, the Celery worker and beat in the foreground. Ctrl-C stops all of them
# and the servers. Without a proxy in front, pages find the realtime service through REALTIME_URL.
RUN_SCRIPT := export DEBUG="$${DEBUG:-true}" DELIVER_TO_LOG="$${DELIVER_TO_LOG:-true}" \
		PORT="$${PORT:-8000}"; \
	export REALTIME_PORT="$${REALTIME_PORT:-$$(($$PORT + 1))}"; \
	export REALTIME_URL="$${REALTIME_URL:-ws://127.0.0.1:$$REALTIME_PORT}"; \
	python manage.py migrate --noinput && \
	python manage.py collectstatic --noinput --verbosity 0 && \
	python manage.py seed_demo && \
	exec honcho start --procfile Procfile --port "$$PORT"

# make test: formatting, lint, then pytest (its exit code 5, "no tests collected", fails too).
TEST_SCRIPT := ruff format --check . && ruff check . && pytest -n 2

# Debian packages the tests need beyond Python's: pgbouncer (the pooler tests start their own), chromium (the
# workspace's browser tests, driven by Playwright).
SYSTEM_PACKAGES := pgbouncer chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv system-packages run test lint format

venv: $(STAMP)

# Re-installed only when a requirements file changes. The production image installs requirements.txt alone.
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(VENV)/bin/python || { \
		test -n "$(PYTHON)" || { echo "Python 3.11 is required (python3.11 or python3)" >&2; exit 1; }; \
		$(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# One apt-get for whatever is missing, run only when something is; nothing to do on a ready machine.
system-packages:
	@missing="$$(for package in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q 'install ok installed' || echo $$package; \
	done)"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

run: venv
	$(WITH_VENV) python -m helpdesk.embedded exec --mode run -- sh -c '$(RUN_SCRIPT)'

test: venv system-packages
	$(WITH_VENV) python -m helpdesk.embedded exec --mode test -- sh -c '$(TEST_SCRIPT)'

lint: venv
	$(WITH_VENV) ruff format --check .
	$(WITH_VENV) ruff check .

format: venv
	$(WITH_VENV) ruff format .
	$(WITH_VENV) ruff check --fix .

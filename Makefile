# The two front doors: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The first Python >= 3.12 on PATH (pyenv shims that are not selected fail the probe).
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 python3 python; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; \
	then echo $$p; break; fi; done)
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
PYTEST_ARGS ?=
BENCH_N ?= 10000,100000,1000000
LOCALE_APPS := common specializations licenses monitoring api imports

.PHONY: help install messages test test-rules test-sqlite test-postgres lint demo bench mutants screenshots clean

help:
	@echo "make demo   set up, seed demo data, run check_sync, serve the admin on 127.0.0.1:8000 (and a worker)"
	@echo "make test   set up, lint, check migrations, run the suite on SQLite and PostgreSQL"
	@echo "make bench  benchmarks on PostgreSQL (BENCH_N=$(BENCH_N))"
	@echo "make mutants  mutation testing: the suite against realistic bugs (docs/MUTANTS.md)"
	@echo "make screenshots  the pictures in docs/, taken by the browser test (Debian's Chromium)"

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "error: Python 3.12 or newer is required and none was found on PATH" >&2; exit 1; fi
	@echo "Using $$($(PYTHON) --version) ($(PYTHON))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Bytecode too, on every run (an upgrade pulls new code): a service user that cannot
# write the checkout would otherwise recompile the changed modules at every start.
install: $(STAMP)
	$(BIN)/python -m compileall -q config common specializations licenses monitoring api imports
	@# The shipped .mo files from the .po files, without GNU gettext (Babel is pure Python).
	@for app in $(LOCALE_APPS); do $(BIN)/pybabel -q compile -d $$app/locale -D django; done

# After a change of wording: the catalogues from the code (needs GNU gettext's xgettext),
# then translate the new entries in each app's locale/hu/LC_MESSAGES/django.po.
messages: $(STAMP)
	DEBUG=1 $(BIN)/python manage.py makemessages -l hu --no-obsolete \
		--ignore='.venv/*' --ignore='tests/*' --ignore='bench/*' --ignore='mutants/*'
	@for app in $(LOCALE_APPS); do $(BIN)/pybabel -q compile -d $$app/locale -D django; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=tests.settings

test-sqlite: $(STAMP)
	@# Explicit, so a developer's .env cannot point this half at another database.
	@# TEST_DATABASE_URL: the server import_source's tests build their source database on.
	DATABASE_URL="sqlite:///$(CURDIR)/db.sqlite3" TEST_DATABASE_URL="$(TEST_DATABASE_URL)" $(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

test-postgres: $(STAMP)
	@if $(BIN)/python -c "import psycopg2, sys; psycopg2.connect(sys.argv[1], connect_timeout=3).close()" "$(TEST_DATABASE_URL)" 2>/dev/null; then \
		DATABASE_URL="$(TEST_DATABASE_URL)" $(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS); \
	elif [ "$$CI" = "true" ]; then \
		echo "error: PostgreSQL is unreachable at $(TEST_DATABASE_URL) and CI=true: failing" >&2; exit 1; \
	else \
		echo "PostgreSQL unreachable at $(TEST_DATABASE_URL): skipped the PostgreSQL half (set TEST_DATABASE_URL)"; \
	fi

# The shipped Prometheus alert rules: valid, and behaving as their unit tests say.
test-rules:
	@if command -v promtool >/dev/null; then \
		promtool check rules monitoring/prometheus/rules.yml && \
		(cd monitoring/prometheus && promtool test rules rules_test.yml); \
	elif [ "$$CI" = "true" ]; then \
		echo "error: promtool (Debian's prometheus) is missing and CI=true: failing" >&2; exit 1; \
	else \
		echo "promtool not found: skipped the alert rule tests (apt-get install prometheus)"; \
	fi

test: lint test-rules test-sqlite test-postgres

# The replaced system's two example catalogue files beside the default three (docs/catalogue.md).
DEMO_CATALOGUE := docs/examples/catalogue

demo: $(STAMP)
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py load_catalogue $(DEMO_CATALOGUE)
	DEBUG=1 $(BIN)/python manage.py seed_demo
	@DEBUG=1 $(BIN)/python manage.py check_sync --limit 20 || \
		echo "(check_sync exited $$?: 1 degraded, 2 critical; the desyncs above were injected by seed_demo)"
	@echo ""
	@echo "Admin: http://127.0.0.1:8000/admin/  (login printed above by seed_demo)"
	@echo "Beside it a background worker (manage.py db_worker) runs large repairs; Ctrl-C stops both."
	@# The worker stops with the server however it ends: Ctrl-C reaches both, the trap covers the rest.
	DEBUG=1 $(BIN)/python manage.py db_worker --no-reload --no-startup-delay & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker' EXIT; \
	DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:8000

# Realistic bugs applied one at a time to a copy of the tree: does the suite notice?
# Writes docs/MUTANTS.md (score, survivors). Not part of `make test`. MUTANTS_ONLY=id,id
mutants: $(STAMP)
	$(BIN)/python mutants/run.py

# The pictures in docs/ (the README's, the Hungarian one in docs/img/), taken by the browser
# test in Debian's headless Chromium on the demo's data.
screenshots: $(STAMP)
	SCREENSHOT_DIR=docs DATABASE_URL="sqlite:///$(CURDIR)/db.sqlite3" $(BIN)/pytest -p no:cacheprovider tests/test_browser.py

bench: $(STAMP)
	BENCH_N="$(BENCH_N)" DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" $(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache

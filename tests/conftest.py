"""The suite's own fixtures and helpers; the shipped ones (make_user, student, staff,
staff_client, committed_db, level_catalogue, pair, desynced_pair) come from the plugin,
monitoring/testing/plugin.py, loaded through its entry point."""

import os
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from licenses import guard
from specializations import catalogue
from tests.production import production_proxy, production_server  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent

requires_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks"
)
# For modules whose tests start their own processes on their own settings and SQLite
# files and never touch the database under test: the PostgreSQL half of `make test`
# would run them a second time, identically (a minute of subprocesses).
once_per_suite = pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="independent of the database under test: runs in the SQLite half",
)

# Who may read the monitor's endpoints: (who, bearer token, expected status).
ACCESS_MATRIX = pytest.mark.parametrize(
    "who, token, status",
    [
        ("anonymous", None, 401),
        ("anonymous", "wrong-token", 403),
        ("member", None, 403),
        ("staff", None, 200),
        ("anonymous", settings.SYNC_HEALTH_TOKEN, 200),
    ],
)


def manage(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """``manage.py args`` in a process of its own, as an operator starts it: the production
    settings (config.settings), DEBUG off, a throwaway SECRET_KEY and no developer's .env.
    ``env`` adds or replaces variables (an empty value counts as unset); the result says
    how long it took (``elapsed``)."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "subprocess-test",
        "DEBUG": "",
        "ACADEMY_ENV_FILE": os.devnull,
        **env,
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    result.elapsed = time.monotonic() - started
    return result


@pytest.fixture(autouse=True)
def _fresh_catalogue_cache():
    # Each test starts from the database's catalogue, not a previous test's cache.
    catalogue.clear_cache()
    yield
    catalogue.clear_cache()


@pytest.fixture(autouse=True)
def _desyncs_may_be_injected(request):
    """Tests inject desyncs the way production gets them (queryset updates, raw SQL).

    On PostgreSQL the commit guard (licenses/guard.py) would refuse them when the
    test case checks deferred constraints before its rollback; a test's own
    transaction is marked unguarded instead, as a restore would be. Tests with
    real commits (``committed_db``) meet the guard and say ``unguarded()`` where
    they mean it; tests/test_guard.py shows the guard itself.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and (
        marker.kwargs.get("transaction") or (marker.args and marker.args[0])
    )
    if marker is None or transactional or "committed_db" in request.fixturenames:
        yield
        return
    request.getfixturevalue("db")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config(%s, 'off', true)", [guard.BYPASS])
    yield


@pytest.fixture
def no_user_admin(settings):
    """An admin without a page for the user model, as a host project may leave it."""
    settings.ROOT_URLCONF = "tests.urls_without_user_admin"


@pytest.fixture
def fetch_as(client, make_user):
    """GET ``url`` as ``who`` ("anonymous", "member" or "staff"), with an optional token."""

    def fetch(url, who, token=None):
        if who != "anonymous":
            client.force_login(make_user(is_staff=(who == "staff")))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.get(url, headers=headers)

    return fetch


@pytest.fixture
def check_sync():
    """Run ``check_sync`` in-process: ``check_sync(*args) -> (exit code, stdout, stderr)``."""
    from monitoring.management.commands.check_sync import Command

    def run(*args: str) -> tuple[int, str, str]:
        command, out, err = Command(), StringIO(), StringIO()
        call_command(command, *args, stdout=out, stderr=err)
        return command.exit_code, out.getvalue(), err.getvalue()

    return run

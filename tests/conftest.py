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
from django.test import SimpleTestCase, TestCase, TransactionTestCase
from django.utils import translation

from licenses import guard
from specializations import catalogue
from specializations.default_catalogue import install_default_catalogue
from tests.production import production_proxy, production_server  # noqa: F401  (fixtures)
from tests.source_db import (  # noqa: F401  (fixtures)
    _source_database,
    academy_catalogue,
    source,
    source_db,
)

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


def operator_env(**env: str) -> dict[str, str]:
    """The environment of ``manage.py`` as an operator starts it: the production settings
    (config.settings), DEBUG off, a throwaway SECRET_KEY and no developer's .env. ``env``
    adds or replaces variables (an empty value counts as unset)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "subprocess-test",
        "DEBUG": "",
        "ACADEMY_ENV_FILE": os.devnull,
        **env,
    }


def manage(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """``manage.py args`` run to its end in a process of its own (``operator_env``); the
    result says how long it took (``elapsed``)."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=operator_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    result.elapsed = time.monotonic() - started
    return result


def manage_process(*args: str, **env: str) -> subprocess.Popen:
    """``manage.py args`` started in a process of its own (``operator_env``), its output
    piped, for a test that acts while it runs."""
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=operator_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _commits(request) -> bool:
    """Whether the test commits for real, on a database the previous such test flushed."""
    marker = request.node.get_closest_marker("django_db")
    transaction = marker is not None and (
        marker.kwargs.get("transaction") or (marker.args and marker.args[0])
    )
    if transaction:
        return True
    if {"transactional_db", "live_server", "committed_db"} & set(request.fixturenames):
        return True
    cls = getattr(request.node, "cls", None)
    return (
        cls is not None and issubclass(cls, TransactionTestCase) and not issubclass(cls, TestCase)
    )


@pytest.fixture(autouse=True)
def default_catalogue(request):
    """Every test finds the default catalogue (specializations/default_catalogue.py).

    A test that commits for real (``transaction=True``, ``transactional_db``,
    ``live_server``, a ``TransactionTestCase``) runs on a database the previous one
    flushed, the catalogue with it: the catalogue is installed again first (one
    query when it is there). Other tests run inside a transaction over the
    migrated catalogue and need nothing.
    """
    if _commits(request):
        cls = getattr(request.node, "cls", None)
        if cls is None or not issubclass(cls, SimpleTestCase):
            # (A Django test case class opens the database itself.)
            request.getfixturevalue("transactional_db")
        install_default_catalogue()
    yield


@pytest.fixture(autouse=True)
def _fresh_catalogue_cache():
    # Each test starts from the database's catalogue, not a previous test's cache.
    catalogue.clear_cache()
    yield
    catalogue.clear_cache()


@pytest.fixture(autouse=True)
def _no_language_left_active():
    # LocaleMiddleware activates a request's language in the thread and leaves it there:
    # a later in-process command (check_sync, import_source) would read it.
    yield
    translation.deactivate()


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


ALL_SCOPES = ("events:write", "progress:read", "catalogue:read")


@pytest.fixture
def api_headers(db):
    """``api_headers(client="attendance", scopes=ALL_SCOPES, **client fields)``: the
    Authorization header of a new key of that client (created when missing)."""
    from django.core.cache import caches

    from api import conf
    from api.models import ApiClient
    from api.services import create_api_key

    # A rolled-back client's id comes back in the next test: its count must not.
    caches[conf.get("API_RATE_LIMIT_CACHE")].clear()

    def make(client="attendance", scopes=ALL_SCOPES, **fields):
        new = create_api_key(client, scopes=list(scopes))
        if fields:
            ApiClient.objects.filter(pk=new.api_key.client_id).update(**fields)
        return {"Authorization": f"Bearer {new.key}"}

    return make

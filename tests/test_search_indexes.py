"""licenses/migrations/0003 when pg_trgm cannot be created: a real role without the right.

The application's role owns its tables but not the database, so PostgreSQL refuses
``CREATE EXTENSION pg_trgm`` (a trusted extension needs CREATE on the database).
``migrate`` must still finish, say so once on stderr, skip only the trigram
indexes, leave the admin's user search working, and the recovery the warning
prints must add the indexes.
"""

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from django.db import connection

from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parent.parent
NAME = f"academy_trgm_{os.getpid()}"  # the scratch database and the application's role
INDEXES = ["auth_user_email_upper_trgm", "auth_user_username_upper_trgm"]
SEARCH = (
    "from django.contrib.auth import get_user_model;"
    "from common.users import search_users;"
    "U = get_user_model();"
    "U.objects.filter(username__startswith='trgm-').delete();"
    "alice = U.objects.create(username='trgm-alice', email='alice@example.org');"
    "U.objects.create(username='trgm-bob', email='bob@example.org');"
    "print(list(search_users('ALICE@example')) == [alice.pk])"
)


def _superuser(dbname: str):
    s = connection.settings_dict
    conn = psycopg2.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        user=s["USER"],
        password=s["PASSWORD"] or None,
        dbname=dbname,
    )
    conn.autocommit = True
    return conn


@pytest.fixture
def app_database():
    """A database owned by the superuser, used by a role that may create only in its schema."""
    admin = _superuser("postgres")
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
        cur.execute(f"DROP ROLE IF EXISTS {NAME}")
        cur.execute(f"CREATE ROLE {NAME} LOGIN")
        cur.execute(f"CREATE DATABASE {NAME}")
        cur.execute(f"REVOKE CREATE ON DATABASE {NAME} FROM PUBLIC")
    scratch = _superuser(NAME)
    with scratch.cursor() as cur:
        cur.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {NAME}")
    s = connection.settings_dict
    url = f"postgres://{NAME}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{NAME}"
    try:
        yield url, scratch
    finally:
        scratch.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
            cur.execute(f"DROP ROLE IF EXISTS {NAME}")
        admin.close()


def _run(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ACADEMY_ENV_FILE": os.devnull,  # a developer's .env stays out of it
        "DATABASE_URL": url,
        "SECRET_KEY": "search-index-test-secret-key",
        "DEBUG": "",
    }
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def _trigram_indexes(scratch) -> list[str]:
    with scratch.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'auth_user'"
            " AND indexname LIKE %s ORDER BY indexname",
            ["%trgm"],
        )
        return [name for (name,) in cur.fetchall()]


def test_migrate_without_pg_trgm_warns_once_skips_the_indexes_and_search_still_works(
    app_database,
):
    url, scratch = app_database
    migrated = _run(url, "manage.py", "migrate", "--noinput", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr
    warnings = [line for line in migrated.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, migrated.stderr
    assert "pg_trgm unavailable" in warnings[0]
    assert "permission denied" in warnings[0]
    assert "manage.py migrate licenses 0002 && manage.py migrate" in warnings[0]
    assert _trigram_indexes(scratch) == []
    # Everything else is there: the last migration of every app, the commit guard.
    shown = _run(url, "manage.py", "migrate", "--check", "--noinput")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    searched = _run(url, "-c", f"import django; django.setup(); {SEARCH}")
    assert searched.stdout.strip() == "True", searched.stderr

    # The recovery the warning prints: the extension by its owner, then the migration again.
    with scratch.cursor() as cur:
        cur.execute("CREATE EXTENSION pg_trgm")
    back = _run(url, "manage.py", "migrate", "licenses", "0002", "--noinput", "-v", "0")
    assert back.returncode == 0, back.stderr
    again = _run(url, "manage.py", "migrate", "--noinput", "-v", "0")
    assert again.returncode == 0, again.stderr
    assert "warning:" not in again.stderr
    assert _trigram_indexes(scratch) == INDEXES
    searched = _run(url, "-c", f"import django; django.setup(); {SEARCH}")
    assert searched.stdout.strip() == "True", searched.stderr

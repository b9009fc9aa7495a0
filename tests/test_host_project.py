"""docs/host-project.md followed to the letter: a new Django project hosts the apps.

A real project (``django-admin startproject mysite``), a custom user model
(``accounts.User``), the docs' Python snippets applied as written, then migrate,
``check``, the services, ``check_sync`` and the admin pages, each a subprocess on
this checkout's virtualenv. The host's database follows the database under test:
SQLite in the SQLite half of ``make test``, its own PostgreSQL database (dropped
after) in the PostgreSQL half.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "host-project.md"
SNIPPET = re.compile(r"```(?:python|ini)\n# (add to )?(\S+)\n(.*?)```", re.DOTALL)

SERVICES = """
from django.contrib.auth import get_user_model
from licenses.guard import unguarded
from licenses.models import UserLicense
from specializations.services import enroll, update_progress

User = get_user_model()
students = [User.objects.create_user(f"host-{i}", f"host-{i}@example.org") for i in range(3)]
for student in students:
    enroll(student, "PLAYER")
update = update_progress(students[0], "PLAYER", xp_gained=30_000, sessions_completed=15)
with unguarded():  # a deliberate desync, as a bad import would leave it
    UserLicense.objects.filter(user=students[1]).update(current_level=3, max_achieved_level=3)
print(json.dumps({"user_table": User._meta.db_table, "levels": [update.old_level,
      update.new_level], "desynced": students[1].pk}))
"""

ADMIN_PAGES = """
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment
from django.utils import translation
from monitoring.models import HealthCheckRun

setup_test_environment()  # the test client's host name
staff = get_user_model().objects.create_superuser("host-staff", "staff@example.org", "x")
client = Client()
client.force_login(staff)
run = HealthCheckRun.objects.latest("pk")
pages = {}
for url in ("/admin/monitoring/desynccase/", f"/admin/monitoring/healthcheckrun/{run.pk}/change/",
            "/admin/monitoring/healthcheckrun/", "/health/sync/"):
    response = client.get(url)
    pages[url] = [response.status_code, response.content.decode()]
with translation.override("hu"):  # as LocaleMiddleware or LANGUAGE_CODE = "hu" would choose
    pages["hu"] = client.get("/admin/monitoring/desynccase/").content.decode()
print(json.dumps({"run": run.pk, "pages": pages}))
"""


def apply_snippets(project: Path) -> list[str]:
    """The docs' Python blocks, each into the file its first line names."""
    applied = []
    for add, path, code in SNIPPET.findall(DOC.read_text(encoding="utf-8")):
        target = project / path
        if add:
            target.write_text(target.read_text(encoding="utf-8") + "\n" + code)
        else:
            target.write_text(code)
        applied.append(f"{'add to ' if add else ''}{path}")
    return applied


@pytest.fixture
def host_database():
    """The host's DATABASES entry: a SQLite file, or a PostgreSQL database of its own."""
    if connection.vendor != "postgresql":
        yield None
        return
    s = connection.settings_dict
    name = f"academy_host_{os.getpid()}"
    server = {
        "host": s["HOST"] or "127.0.0.1",
        "port": s["PORT"] or 5432,
        "user": s["USER"],
        "password": s["PASSWORD"] or None,
    }
    admin = psycopg2.connect(dbname="postgres", **server)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "HOST": server["host"],
            "PORT": str(server["port"]),
            "USER": server["user"],
            "PASSWORD": server["password"] or "",
        }
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_a_new_project_with_a_custom_user_model_hosts_the_apps(tmp_path, host_database):
    project = tmp_path / "host"
    project.mkdir()
    # Only what a shell has: none of this suite's settings, database or SYNC_* variables.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}

    def run(*args: str, cwd=project, code=None) -> subprocess.CompletedProcess:
        command = [sys.executable, *args] + (["-c", code] if code else [])
        result = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0 or args[1:2] == ("check_sync",), (
            f"{args}: {result.stdout}{result.stderr}"
        )
        return result

    run("-m", "django", "startproject", "mysite", ".")
    run("manage.py", "startapp", "accounts")
    assert apply_snippets(project) == [
        "accounts/models.py",
        "accounts/admin.py",
        "add to mysite/settings.py",
        "add to mysite/urls.py",
        "add to mysite/settings.py",
        "pytest.ini",
        "test_sync.py",
    ]
    if host_database:
        settings = project / "mysite" / "settings.py"
        settings.write_text(
            settings.read_text() + f"\nDATABASES = {{'default': {host_database!r}}}\n"
        )
    run("manage.py", "makemigrations", "accounts")
    migrated = run("manage.py", "migrate", "--noinput")
    assert "Applying licenses.0003_user_search_indexes... OK" in migrated.stdout
    checked = run("manage.py", "check")
    # SQLite ignores the covering indexes' extra columns and says so (the docs, step 6).
    reported = set(re.findall(r"\(([a-z_]+\.[EW]\d+)\)", checked.stderr))
    assert reported == (set() if host_database else {"models.W040"}), checked.stderr

    shell = ("manage.py", "shell", "-v", "0")
    services = json.loads(run(*shell, code="import json\n" + SERVICES).stdout)
    assert services["user_table"] == "accounts_user"
    assert services["levels"] == [1, 2]

    report = run("manage.py", "check_sync", "--json")
    assert report.returncode == 2, report.stdout + report.stderr  # 1 of 3 pairs: critical
    assert json.loads(report.stdout)["by_kind"]["level_mismatch"] == 1

    shown = json.loads(run(*shell, code="import json\n" + ADMIN_PAGES).stdout)
    user_page = f'href="/admin/accounts/user/{services["desynced"]}/change/"'
    cases = shown["pages"]["/admin/monitoring/desynccase/"]
    assert cases[0] == 200 and user_page in cases[1]
    run_page = shown["pages"][f"/admin/monitoring/healthcheckrun/{shown['run']}/change/"]
    assert run_page[0] == 200 and user_page in run_page[1]
    assert shown["pages"]["/admin/monitoring/healthcheckrun/"][0] == 200
    # Hungarian with nothing configured: the apps' catalogues, and common's Hungarian for
    # Django's own strings that Django's catalogue lacks (common/django_strings.py).
    for text in ("Eltérések (élő)", "Keresés: eltérések", "- Válasszon -", ">Végrehajtás<"):
        assert text in shown["pages"]["hu"], text
    health = shown["pages"]["/health/sync/"]
    assert health[0] == 503 and json.loads(health[1])["status"] == "critical"

    # The host's own tests, on the shipped plugin's fixtures (pytest-django's test database).
    tested = run("-m", "pytest", "-p", "no:cacheprovider", "-q", "test_sync.py")
    assert "2 passed" in tested.stdout, tested.stdout

    if host_database:
        indexes = run(
            *shell,
            code="from django.db import connection\n"
            "with connection.cursor() as c:\n"
            "    c.execute(\"SELECT indexname FROM pg_indexes WHERE tablename='accounts_user'"
            " AND indexname LIKE '%trgm' ORDER BY 1\")\n"
            "    print([r[0] for r in c.fetchall()])",
        )
        assert indexes.stdout.strip() == (
            "['accounts_user_email_upper_trgm', 'accounts_user_username_upper_trgm']"
        )

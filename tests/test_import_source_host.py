"""import_source in a new Django project whose user model is its own, from a real source.

Built as tests/test_host_project.py builds its project (``startproject``, an
``accounts`` app, the apps in INSTALLED_APPS, migrate; its database follows the
database under test), but with a user model unlike Django's: the email is the
USERNAME_FIELD, its own table and column names, no first or last name, a
required field of its own. The import writes through that model's columns,
runs again without changing anything, and follows the source when two users
swap emails. Then the product's admin lists search and sort by that model's
fields, and the shipped pytest plugin's fixtures make its users.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.source_db import ACADEMY, SourceDb, fill_academy, server_url
from tests.test_host_project import host_database  # noqa: F401  (fixture)

MODELS = """
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models


class MemberManager(BaseUserManager):
    def create_user(self, email, password=None, **fields):
        member = self.model(email=self.normalize_email(email), **fields)
        member.set_password(password)
        member.save(using=self._db)
        return member


class Member(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True, db_column="email_address")
    display_name = models.CharField(max_length=100)  # required: Django's "" when not given
    is_active = models.BooleanField(default=True, db_column="active")
    is_staff = models.BooleanField(default=False)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    objects = MemberManager()

    class Meta:
        db_table = "academy_members"
"""

SETTINGS = """
INSTALLED_APPS += ["accounts", "common", "specializations", "licenses", "monitoring", "imports"]
AUTH_USER_MODEL = "accounts.Member"
"""

# The source's two specializations beside the fresh install's INTERNSHIP (as the
# suite's academy_catalogue fixture holds them).
CATALOGUE = """
from specializations.models import Level, Specialization
for code in ("GANCUJU_PLAYER", "LFA_COACH"):
    spec = Specialization.objects.create(code=code, name=code.title(), max_level=8)
    Level.objects.bulk_create(
        Level(specialization=spec, number=k, name=f"L{k}", required_xp=(k - 1) * 1000,
              required_sessions=0, license_title=f"{code} {k}")
        for k in range(1, 9)
    )
"""

MEMBERS = """
import json
from django.contrib.auth import get_user_model
from specializations.models import ExternalId
Member = get_user_model()
external = dict(ExternalId.objects.values_list("user", "external_id"))
print(json.dumps({
    "table": Member._meta.db_table,
    "members": sorted(
        [int(external[m.pk]), m.email, m.display_name, m.is_staff, m.is_active,
         m.is_superuser, m.has_usable_password()]
        for m in Member.objects.all()
    ),
}))
"""

# The product's admin lists with a user column, searched and sorted by it: the search
# and the order follow the model's USERNAME_FIELD and email field (no username here).
ADMIN_LISTS = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment

setup_test_environment()  # the test client's host name
staff = get_user_model().objects.create_user("staff@host.test", is_staff=True, is_superuser=True)
client = Client()
client.force_login(staff)
pages = {}
for page, user_column in (
    ("specializations/specializationprogress", 1),
    ("licenses/userlicense", 1),
    ("licenses/licenseprogression", 3),
    ("monitoring/desynccase", 1),
):
    for query in ("q=anna", f"o={user_column}", f"o=-{user_column}&q=academy"):
        response = client.get(f"/admin/{page}/?{query}")
        text = response.content.decode()
        pages[f"{page}?{query}"] = [response.status_code, "bela@" in text, "anna@" in text]
print(json.dumps(pages))
"""

# The shipped pytest plugin's users (its recipes name them by the model's fields).
HOST_TESTS = """
def test_the_desync_page_lists_a_desynced_pair(staff_client, desynced_pair):
    page = staff_client.get("/admin/monitoring/desynccase/?q=pair")
    assert page.status_code == 200
    assert desynced_pair.get_username() in page.content.decode()
"""


@pytest.fixture
def academy_source():
    server = server_url()
    if server is None:
        pytest.skip("no PostgreSQL server for the source database (set TEST_DATABASE_URL)")
    source = SourceDb(server).create()
    try:
        fill_academy(source)
        yield source
    finally:
        source.drop()


def test_a_host_projects_own_user_model_takes_the_import(
    tmp_path,
    host_database,  # noqa: F811
    academy_source,
):
    project = tmp_path / "host"
    project.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}

    def run(*args: str, code: str | None = None, ok=True) -> subprocess.CompletedProcess:
        command = [sys.executable, *args] + (["-c", code] if code else [])
        result = subprocess.run(
            command, cwd=project, env=env, capture_output=True, text=True, timeout=300
        )
        if ok:
            assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
        return result

    def shell(code: str) -> dict:
        return json.loads(run("manage.py", "shell", "-v", "0", code=code).stdout)

    run("-m", "django", "startproject", "mysite", ".")
    run("manage.py", "startapp", "accounts")
    (project / "accounts" / "models.py").write_text(MODELS)
    settings = project / "mysite" / "settings.py"
    extra = SETTINGS
    if host_database:
        extra += f"DATABASES = {{'default': {host_database!r}}}\n"
    settings.write_text(settings.read_text() + extra)
    run("manage.py", "makemigrations", "accounts")
    run("manage.py", "migrate", "--noinput")
    run("manage.py", "shell", "-v", "0", code=CATALOGUE)

    imported = run("manage.py", "import_source", academy_source.url)
    assert "Imported users: 9 new, 0 changed, 0 unchanged" in imported.stdout
    assert imported.stdout.splitlines()[-1] == "Imported."
    shown = shell(MEMBERS)
    assert shown["table"] == "academy_members"
    assert shown["members"][:5] == [
        [1, "admin@academy.test", "", True, True, False, False],
        [2, "director@academy.test", "", True, True, False, False],
        [3, "oktato@academy.test", "", True, True, False, False],
        [4, "anna@academy.test", "", False, True, False, False],
        [5, "bela@academy.test", "", False, True, False, False],
    ]
    assert [m[4] for m in shown["members"][5:]] == [True, False, True, True]  # Dóra inactive
    checked = run("manage.py", "check_sync", "--json", "--no-record", ok=False)
    by_kind = json.loads(checked.stdout)["by_kind"]
    assert {kind: by_kind[kind] for kind in ACADEMY["desyncs"]} == ACADEMY["desyncs"]

    again = run("manage.py", "import_source", academy_source.url)
    assert "Imported users: 0 new, 0 changed, 9 unchanged" in again.stdout
    assert shell(MEMBERS) == shown

    # Anna and Béla swap emails at the source: both follow, though the column is unique.
    academy_source.execute(
        "UPDATE users SET email = CASE id WHEN 4 THEN 'bela@academy.test'"
        " ELSE 'anna@academy.test' END WHERE id IN (4, 5)"
    )
    swapped = run("manage.py", "import_source", academy_source.url)
    assert "Imported users: 0 new, 2 changed, 7 unchanged" in swapped.stdout
    members = shell(MEMBERS)["members"]
    assert [m[:2] for m in members[3:5]] == [[4, "bela@academy.test"], [5, "anna@academy.test"]]

    # Béla's out-of-sync pair, now under anna@, is on each list; bela@ (Anna's pairs, in
    # sync) on all but the desyncs.
    for url, (status, bela, anna) in shell(ADMIN_LISTS).items():
        assert status == 200, url
        assert anna and bela == ("q=anna" not in url and "desynccase" not in url), url

    (project / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = mysite.settings\n")
    (project / "test_sync.py").write_text(HOST_TESTS)
    tested = run("-m", "pytest", "-p", "no:cacheprovider", "-q", "test_sync.py")
    assert "1 passed" in tested.stdout, tested.stdout

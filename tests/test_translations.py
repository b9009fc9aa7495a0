"""The Hungarian catalogue: complete, compiled, and in step with the code (issue 27).

Each app ships its own ``locale/hu/LC_MESSAGES/django.po`` and the compiled ``.mo``
(a host project needs no LOCALE_PATHS). ``make messages`` refreshes the catalogues
after a change of wording; these tests fail until it was run and every entry translated.
"""

import gettext
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from tests.conftest import once_per_suite

ROOT = Path(__file__).resolve().parent.parent
APPS = ("common", "specializations", "licenses", "monitoring", "api", "imports")

pytestmark = once_per_suite


def po_path(app: str) -> Path:
    return ROOT / app / "locale" / "hu" / "LC_MESSAGES" / "django.po"


def read_catalogue(path: Path):
    with path.open("rb") as handle:
        return read_po(handle, locale="hu")


def keys(catalogue) -> set:
    """(context, msgid) of every live entry; a plural entry by its singular."""
    return {
        (message.context, message.id[0] if isinstance(message.id, tuple) else message.id)
        for message in catalogue
        if message.id
    }


@pytest.mark.parametrize("app", APPS)
def test_every_entry_is_translated_and_none_is_fuzzy(app):
    catalogue = read_catalogue(po_path(app))
    assert catalogue.plural_forms == "nplurals=2; plural=(n != 1);"
    untranslated = [
        message.id
        for message in catalogue
        if message.id
        and (
            message.fuzzy
            or not (all(message.string) if isinstance(message.string, tuple) else message.string)
        )
    ]
    assert untranslated == []
    assert list(catalogue.obsolete) == []


@pytest.mark.parametrize("app", APPS)
def test_the_shipped_mo_file_is_compiled_from_the_po_file(app):
    catalogue = read_catalogue(po_path(app))
    with po_path(app).with_suffix(".mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for message in catalogue:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            got = compiled.ngettext(message.id[0], message.id[1], 5)
            assert got == message.string[1], message.id
        elif message.context:
            assert compiled.pgettext(message.context, message.id) == message.string
        else:
            assert compiled.gettext(message.id) == message.string


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> dict[str, set]:
    """``makemessages`` run on a copy of the code: what the code marks today, per app."""
    if shutil.which("xgettext") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("xgettext (Debian's gettext) is missing and CI=true")
        pytest.skip("xgettext not found: apt-get install gettext")
    copy = tmp_path_factory.mktemp("messages")
    for name in ("manage.py", "config", *APPS):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("*.po", "*.mo"))
        else:
            shutil.copy(source, copy / name)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "ACADEMY_ENV_FILE": "/dev/null",
        "DATABASE_URL": f"sqlite:///{copy / 'unused.sqlite3'}",
    }
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "hu", "--no-obsolete"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
    )
    return {
        app: keys(read_catalogue(copy / app / "locale/hu/LC_MESSAGES/django.po")) for app in APPS
    }


@pytest.mark.parametrize("app", APPS)
def test_every_string_marked_in_the_code_is_in_the_catalogue(app, extracted):
    committed = keys(read_catalogue(po_path(app)))
    assert extracted[app] - committed == set(), "run `make messages` and translate the new entries"
    assert committed - extracted[app] == set(), "entries the code no longer marks: `make messages`"

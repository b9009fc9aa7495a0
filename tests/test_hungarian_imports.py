"""The import pages read in Hungarian: the run list, the two start pages, a run's page with
its progress and its report, as a staff member whose browser asks for Hungarian gets them.

Each page is checked twice (tests/test_hungarian_monitoring.py's way): its Hungarian text
is there, and no English text of the imports and common catalogues (the pieces of two or
more words between an entry's placeholders that its translation does not keep) is left.
The problems an import names (a bad line's, a source row's) stay the import's own English
words, as the commands print them.
"""

import html
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation

from imports.models import ImportRun
from specializations.services import enroll

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[sdfr]|%%")
RUNS = reverse("admin:imports_importrun_changelist")
NEW_FILE = reverse("admin:imports_importrun_new_file")
RUN_SOURCE = reverse("admin:imports_importrun_run_source")


def english_fragments() -> set[str]:
    fragments = set()
    for app in ("imports", "common"):
        with (ROOT / app / "locale/hu/LC_MESSAGES/django.po").open("rb") as handle:
            catalogue = read_po(handle, locale="hu")
        for message in catalogue:
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            for text in ids:
                for piece in PLACEHOLDER.split(text or ""):
                    piece = piece.strip(" ;,.:")
                    if len(piece.split()) >= 2 and not any(piece in s for s in strings):
                        fragments.add(piece)
    return fragments


ENGLISH = english_fragments()


def hungarian(response) -> str:
    assert response.status_code == 200, response.content[:500]
    page = html.unescape(response.content.decode())
    assert 'lang="hu"' in page
    assert sorted(f for f in ENGLISH if f in page) == []
    return page


@pytest.fixture(autouse=True)
def _language_back():
    """A request's LocaleMiddleware leaves Hungarian active in the thread: not for later tests."""
    yield
    translation.deactivate()


@pytest.fixture
def hu_client(staff_client, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    staff_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "hu"
    return staff_client


@pytest.fixture
def students(make_user, academy_catalogue):
    users = [make_user() for _ in range(2)]
    for user in users:
        enroll(user, "GANCUJU_PLAYER")
    return users


def upload(client, rows: list[str], **fields) -> ImportRun:
    content = "\n".join(["student_id,specialization,xp", *rows]) + "\n"
    client.post(NEW_FILE, {"file": SimpleUploadedFile("díjak.csv", content.encode()), **fields})
    return ImportRun.objects.latest("id")


def test_the_start_pages_read_in_hungarian(hu_client, settings):
    page = hungarian(hu_client.get(NEW_FILE))
    assert "Új fájl importálása" in page and "Feltöltés és importálás" in page
    settings.IMPORTS_SOURCE_URL = "postgresql://reader:titok@old-host/practice"
    page = hungarian(hu_client.get(RUN_SOURCE))
    assert "A korábbi rendszer adatbázisa, csak olvasva" in page
    assert "postgresql://reader:***@old-host/practice" in page and "titok" not in page
    settings.IMPORTS_SOURCE_URL = ""
    assert "Nincs beállított forrásadatbázis" in hungarian(hu_client.get(RUN_SOURCE))


def test_a_form_refusal_reads_in_hungarian(hu_client):
    response = hu_client.post(NEW_FILE, {"file": SimpleUploadedFile("x.xlsx", b"PK")})
    assert "„x.xlsx” nem .csv vagy .jsonl fájl." in hungarian(response)


def test_a_done_run_and_its_report_read_in_hungarian(hu_client, students):
    a, b = students
    run = upload(hu_client, [f"{a.pk},GANCUJU_PLAYER,1500", f"{b.pk},GANCUJU_PLAYER,10"])
    page = hungarian(hu_client.get(reverse("admin:imports_importrun_change", args=[run.pk])))
    assert "Kész: 2 új esemény beérkezett 2 sorból (0 már rögzítve)." in page
    assert "Az importálás haladása" in page and "emelt szintek" in page


def test_a_refused_file_reads_in_hungarian_around_the_imports_own_words(hu_client, students):
    a, _ = students
    run = upload(hu_client, [f"{a.pk},GANCUJU_PLAYER,10", "999999,GANCUJU_PLAYER,1"])
    page = hungarian(hu_client.get(reverse("admin:imports_importrun_change", args=[run.pk])))
    assert "Elutasítva: 1 hiba 2 sorban, lent felsorolva; semmi sem íródott be." in page
    assert "1 hibás sor" in page and "999999 is not a user" in page


def test_a_running_run_and_the_list_read_in_hungarian(hu_client, staff):
    now = timezone.now()
    ImportRun.objects.create(
        kind="file", state="done", triggered_by=staff, file_name="díjak.csv",
        report={"events": 3, "replays": 1}, queued_at=now, updated_at=now,
    )  # fmt: skip
    running = ImportRun.objects.create(
        kind="source", state="running", triggered_by=staff, source_database="postgresql://x/y",
        read={"users": 1200, "specialization_progress": 300}, queued_at=now, started_at=now,
        updated_at=now,
    )  # fmt: skip
    page = hungarian(hu_client.get(RUNS))
    assert "3 új esemény, 1 már rögzítve" in page and "Importálás a forrásadatbázisból" in page
    page = hungarian(hu_client.get(reverse("admin:imports_importrun_change", args=[running.pk])))
    assert "A forrásadatbázis beolvasása (felhasználók: 1\xa0200, haladási sorok: 300)" in page
    progress = hu_client.get(reverse("admin:imports_importrun_progress", args=[running.pk]))
    assert progress.json()["texts"]["read"] == "felhasználók: 1\xa0200, haladási sorok: 300"


def test_a_source_run_and_its_report_read_in_hungarian(
    hu_client, source, academy_catalogue, settings
):
    settings.IMPORTS_SOURCE_URL = source.url
    hu_client.post(RUN_SOURCE, {"dry_run": "on"})
    run = ImportRun.objects.get()
    page = hungarian(hu_client.get(reverse("admin:imports_importrun_change", args=[run.pk])))
    assert "A próbafutás kész: semmi sem íródott be" in page
    assert "Eltérések a forrásban e termék meghatározása szerint: 1 szinteltérés" in page

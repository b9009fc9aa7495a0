"""Django's own strings that its Hungarian lacks, translated by the product (issue 27).

common/django_strings.py marks them; makemessages copies them into common's catalogue
like any other entry. Each must be translated, still be Django's msgid word for word (an
upgrade that renames one leaves ours unused and the page English), still lack Django's
own Hungarian (else ours is dead weight), and reach a Hungarian page.
"""

from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.urls import reverse
from django.utils import translation

from tests.hungarian_pages import DJANGO, django_msgids

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "common/locale/hu/LC_MESSAGES/django.po"


def marked() -> list:
    """The catalogue's entries that common/django_strings.py marks."""
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="hu")
    return [
        message
        for message in catalogue
        if message.id and any(path.endswith("django_strings.py") for path, _ in message.locations)
    ]


def key(message) -> tuple:
    if isinstance(message.id, tuple):
        return (message.context, *message.id)
    return (message.context, message.id, None)


def django_hungarian() -> set:
    """(context, msgid) of every entry Django's own Hungarian catalogues translate."""
    translated = set()
    for path in DJANGO.glob("**/locale/hu/LC_MESSAGES/django.po"):
        with path.open("rb") as handle:
            for message in read_po(handle, locale="hu"):
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                if message.id and all(strings) and not message.fuzzy:
                    msgid = message.id[0] if isinstance(message.id, tuple) else message.id
                    translated.add((message.context, msgid))
    return translated


def test_the_strings_the_product_pages_were_seen_to_lack_are_there():
    ids = {key(message)[1] for message in marked()}
    assert {"Search %(name)s", "- Select an option -", "Run", "Model name"} <= ids


def test_each_is_translated():
    untranslated = [
        message.id
        for message in marked()
        if message.fuzzy
        or not all(message.string if isinstance(message.string, tuple) else (message.string,))
    ]
    assert untranslated == []


def test_each_is_still_a_msgid_of_django_s_own_english_catalogues():
    django = set(django_msgids())
    renamed = [key(message) for message in marked() if key(message) not in django]
    assert renamed == [], "Django renamed these: mark its new wording in common/django_strings.py"


def test_django_s_own_hungarian_still_lacks_each():
    translated = django_hungarian()
    covered = [key(message)[:2] for message in marked() if key(message)[:2] in translated]
    assert covered == [], "Django translates these now: drop them from common/django_strings.py"


@pytest.mark.django_db
def test_each_reaches_a_hungarian_page(staff_client):
    with translation.override("hu"):
        assert translation.gettext("Search %(name)s") == "Keresés: %(name)s"
        assert translation.ngettext(
            "…and %(count)d more object.", "…and %(count)d more objects.", 3
        ) == ("…és még %(count)d objektum.")
    page = staff_client.get(
        reverse("admin:licenses_userlicense_changelist"), HTTP_ACCEPT_LANGUAGE="hu"
    ).content.decode()
    for text in ("Keresés: licencek", "- Válasszon -", ">Végrehajtás</button>", "Modell neve"):
        assert text in page


def test_the_task_backend_s_names_are_still_its_own_marked_strings():
    # common/tasks_app.py marks them again for our catalogue: a renamed one would stay English.
    import re

    import django_tasks_db

    from common.tasks_app import MARKED

    source = (Path(django_tasks_db.__file__).parent / "models.py").read_text()
    marked_there = set(re.findall(r'_\("([^"]+)"\)', source))
    assert set(MARKED) - {"Background jobs"} <= marked_there


@pytest.mark.django_db
def test_the_task_backend_s_section_reads_hungarian(staff_client):
    index = staff_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="hu").content.decode()
    assert "Háttérfeladatok" in index and "Feladateredmények" in index
    assert "Tasks Database Backend" not in index and "Task Results" not in index
    results = staff_client.get(
        reverse("admin:django_tasks_database_dbtaskresult_changelist"), HTTP_ACCEPT_LANGUAGE="hu"
    ).content.decode()
    assert "(Feladateredmény)" in results and "Task Result" not in results

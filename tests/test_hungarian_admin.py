"""The admin pages of specializations, licenses, common and api read in Hungarian (issue 27)."""

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.urls import reverse
from django.utils import translation

from api.models import ApiClient, ApiKey
from api.services import create_api_key
from licenses.models import UserLicense
from specializations.models import Level, SpecializationProgress, shown_level_name
from specializations.services import update_progress
from tests.hungarian_pages import django_english_left, english_left

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
APPS = ("specializations", "licenses", "common", "api")
HU = {"HTTP_ACCEPT_LANGUAGE": "hu"}


@pytest.fixture(autouse=True)
def _english_afterwards():
    """LocaleMiddleware leaves the request's language active in the thread: later tests
    (a command's output read in-process) must not inherit Hungarian."""
    yield
    translation.deactivate()


def english_phrases() -> set[str]:
    """Every msgid of these apps' catalogues of two or more words whose translation differs."""
    found = set()
    for app in APPS:
        with open(ROOT / app / "locale/hu/LC_MESSAGES/django.po", "rb") as po:
            for message in read_po(po):
                ids = message.id if isinstance(message.id, tuple) else (message.id,)
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                for msgid in ids:
                    if msgid and msgid not in strings:
                        text = re.split(r"%\(\w+\)[sd]|\{\w*\}", msgid)
                        found.update(p.strip() for p in text if len(p.strip().split()) >= 2)
    return found


def assert_hungarian(response) -> str:
    assert response.status_code == 200, response.content[:500]
    html = response.content.decode()
    assert 'lang="hu"' in html
    english = sorted(phrase for phrase in english_phrases() if phrase in html)
    assert english == []
    assert django_english_left(html) == []
    return html


@pytest.fixture
def progress(student):
    update_progress(student, "PLAYER", xp_gained=1_000, sessions_completed=4)
    return SpecializationProgress.objects.get(student=student)


def test_the_progress_list_and_its_key_pages_read_in_hungarian(staff_client, progress):
    url = reverse("admin:specializations_specializationprogress_changelist")
    assert_hungarian(staff_client.get(url, **HU))
    html = assert_hungarian(staff_client.get(url + "?sync=ok", **HU))
    assert "szakirányos haladás" in html


def test_the_progress_page_with_its_events_reads_in_hungarian(staff_client, progress):
    url = reverse("admin:specializations_specializationprogress_change", args=[progress.pk])
    html = assert_hungarian(staff_client.get(url, **HU))
    assert "Főkönyv: 1 esemény" in html
    assert f"{progress.student_id}/PLAYER haladás, 1. szint" in html
    assert "XP javítása ennyivel" in html


def test_a_correction_without_reason_is_refused_in_hungarian(staff_client, progress):
    url = reverse("admin:specializations_specializationprogress_change", args=[progress.pk])
    form = staff_client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: v for k, v in {**data, "correct_xp_gained": "5"}.items() if v is not None}
    html = assert_hungarian(staff_client.post(url, data, **HU))
    assert "Adja meg, miért javítja az összesítéseket" in html


def test_the_licence_list_and_page_read_in_hungarian(staff_client, progress):
    licence = UserLicense.objects.get(user=progress.student)
    assert_hungarian(staff_client.get(reverse("admin:licenses_userlicense_changelist"), **HU))
    url = reverse("admin:licenses_userlicense_change", args=[licence.pk])
    html = assert_hungarian(staff_client.get(url, **HU))
    assert "licencelőzmények" in html.lower()
    assert f"{licence.user_id}/PLAYER licenc, 1. szint" in html  # the title, the breadcrumbs


def test_a_level_change_without_reason_is_refused_in_hungarian(staff_client, progress):
    licence = UserLicense.objects.get(user=progress.student)
    url = reverse("admin:licenses_userlicense_change", args=[licence.pk])
    response = staff_client.post(
        url,
        {
            "current_level": "2",
            "reason": "",
            "is_active": "on",
            "progressions-TOTAL_FORMS": "0",
            "progressions-INITIAL_FORMS": "0",
        },
        **HU,
    )
    html = assert_hungarian(response)
    assert "Adja meg, miért változik a szint" in html


def test_the_licence_history_list_and_its_filters_read_in_hungarian(staff_client, progress):
    url = reverse("admin:licenses_licenseprogression_changelist")
    assert_hungarian(staff_client.get(url, **HU))
    assert_hungarian(staff_client.get(url + "?actor=system", **HU))


def test_the_specialization_pages_read_in_hungarian(staff_client):
    level = Level.objects.filter(specialization_id="PLAYER").first()
    level.unchecked_requirements = {"exam": "yes"}
    level.save()
    assert_hungarian(
        staff_client.get(reverse("admin:specializations_specialization_changelist"), **HU)
    )
    assert_hungarian(staff_client.get(reverse("admin:specializations_specialization_add"), **HU))
    url = reverse("admin:specializations_specialization_change", args=["PLAYER"])
    html = assert_hungarian(staff_client.get(url, **HU))
    assert "a termék által nem ellenőrzött" in html.lower()
    assert "exam: yes" in html


def test_the_api_pages_read_in_hungarian(staff_client):
    client = ApiClient.objects.create(name="attendance", scopes=["events:write"])
    create_api_key("attendance")
    assert_hungarian(staff_client.get(reverse("admin:api_apiclient_changelist"), **HU))
    assert_hungarian(
        staff_client.get(reverse("admin:api_apiclient_change", args=[client.pk]), **HU)
    )
    assert_hungarian(staff_client.get(reverse("admin:api_apikey_changelist"), **HU))
    shown = staff_client.post(
        reverse("admin:api_apiclient_changelist"),
        {"action": "new_key", "_selected_action": [client.pk]},
        **HU,
    )
    assert "Minden kulcs csak most látható" in assert_hungarian(shown)

    keys = list(ApiKey.objects.values_list("pk", flat=True))
    revoked = staff_client.post(
        reverse("admin:api_apikey_changelist"),
        {"action": "revoke", "_selected_action": keys},
        follow=True,
        **HU,
    )
    assert f"{len(keys)} kulcs visszavonva." in assert_hungarian(revoked)


@pytest.mark.parametrize(("language", "clients", "licences"), [
    ("hu", "2 API-kliens\n", "2 licenc\n"),  # Hungarian keeps the noun singular after a number
    ("en", "2 API clients\n", "2 licences\n"),
])  # fmt: skip
def test_a_list_counts_its_rows_as_the_language_says_it(
    staff_client, make_user, language, clients, licences
):
    ApiClient.objects.bulk_create([ApiClient(name="attendance"), ApiClient(name="quiz")])
    for user in (make_user(), make_user()):
        update_progress(user, "PLAYER", xp_gained=1)  # a licence each, through the hook
    headers = {"HTTP_ACCEPT_LANGUAGE": language}
    api_list = staff_client.get(reverse("admin:api_apiclient_changelist"), **headers)
    licence_list = staff_client.get(reverse("admin:licenses_userlicense_changelist"), **headers)
    assert clients in api_list.content.decode()  # Django's own pagination, overridden
    assert licences in licence_list.content.decode()  # the big lists' pagination


def test_a_level_shows_its_english_name_on_an_english_page_and_its_name_otherwise():
    level = Level(specialization_id="PLAYER", number=1, name="Bambusz Tanítvány", name_en="Bamboo")
    with translation.override("en"):
        assert level.shown_name == "Bamboo"
    with translation.override("hu"):
        assert level.shown_name == "Bambusz Tanítvány"
    assert shown_level_name("Bambusz Tanítvány", "") == "Bambusz Tanítvány"


def test_a_bad_list_parameter_is_refused_in_hungarian(staff_client):
    url = reverse("admin:licenses_userlicense_changelist")
    response = staff_client.get(url + "?sync=nope", **HU)
    assert response.status_code == 400
    assert response.content.decode() == (
        "Hibás lekérdezési paraméter ('sync'='nope'): ezek egyike várható: "
        "level_mismatch, missing_progress, ok."
    )


def test_a_bad_events_page_is_refused_in_hungarian(staff_client, progress):
    url = reverse("admin:specializations_specializationprogress_change", args=[progress.pk])
    response = staff_client.get(url + "?events_page=0", **HU)
    assert response.status_code == 400
    assert "1-től kezdődő egész szám várható" in response.content.decode()


def test_a_bad_specialization_code_is_refused_in_hungarian(staff_client):
    response = staff_client.post(
        reverse("admin:specializations_specialization_add"),
        {
            "code": "bad code",
            "name": "X",
            "max_level": "1",
            "levels-TOTAL_FORMS": "0",
            "levels-INITIAL_FORMS": "0",
        },
        **HU,
    )
    html = assert_hungarian(response)
    assert "A szakirány kódja egy nagybetű" in html


@pytest.mark.parametrize(
    ("language", "shown"), [("en", "Bamboo Disciple"), ("hu", "Bambusz Tanítvány")]
)
def test_the_specialization_page_shows_a_level_name_for_its_language(staff_client, language, shown):
    Level.objects.filter(specialization_id="PLAYER", number=1).update(
        name="Bambusz Tanítvány", name_en="Bamboo Disciple"
    )
    url = reverse("admin:specializations_specialization_change", args=["PLAYER"])
    html = staff_client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    cells = re.findall(r'<td class="field-shown_name">\s*<p>(.*?)</p>', html)
    assert cells[0] == shown


PRODUCT_APPS = ("specializations", "licenses", "monitoring", "api")


def product_pages() -> list[str]:
    """Every admin page the product adds, for one saved object of each of its models: the
    index, each app's page, and per model its list, add, change, history and delete pages
    (those the admin offers)."""
    from django.contrib import admin as django_admin

    pages = [reverse("admin:index")]
    pages += [reverse("admin:app_list", args=[app]) for app in PRODUCT_APPS]
    for model, model_admin in django_admin.site._registry.items():
        opts = model._meta
        if opts.app_label not in PRODUCT_APPS:
            continue
        name = f"admin:{opts.app_label}_{opts.model_name}"
        pages.append(reverse(f"{name}_changelist"))
        if model_admin.has_add_permission(_superuser_request()):
            pages.append(reverse(f"{name}_add"))
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"no {opts.model_name} to render"
        pages.append(reverse(f"{name}_change", args=[obj.pk]))
        pages.append(reverse(f"{name}_history", args=[obj.pk]))
        if model_admin.has_delete_permission(_superuser_request(), obj):
            pages.append(reverse(f"{name}_delete", args=[obj.pk]))
    return pages


def _superuser_request():
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = get_user_model()(is_staff=True, is_superuser=True, is_active=True)
    return request


def test_every_product_app_is_named_in_the_reader_s_language(staff_client):
    from django.apps import apps
    from django.utils.functional import Promise

    for app in PRODUCT_APPS:
        assert isinstance(apps.get_app_config(app).verbose_name, Promise), app
    html = assert_hungarian(staff_client.get(reverse("admin:index"), **HU))
    for name in ("Szakirányok", "Licencek", "Szinkronfigyelés", "HTTP API"):
        assert f">{name}</a>" in html, name


def test_every_product_admin_page_reads_hungarian(staff_client, progress):
    from monitoring import services
    from tests.admin_pages import inject, make_pairs

    inject(make_pairs(5))
    services.run_health_check()
    services.repair(specialization="PLAYER", reason="próba")
    inject(make_pairs(5))  # desyncs again, for the Desync cases pages
    ApiClient.objects.create(name="attendance", scopes=["events:write"])
    create_api_key("attendance")
    failures = {}
    for url in product_pages():
        response = staff_client.get(url, **HU)
        assert response.status_code == 200, url
        if left := english_left(response.content.decode()):
            failures[url] = left
    assert failures == {}

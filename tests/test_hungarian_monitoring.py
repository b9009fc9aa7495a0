"""The sync monitor's admin pages, repair flow, run pages and health reason in Hungarian
(issue 27), as a staff member whose browser asks for Hungarian gets them.

Each page is rendered with Django's test client (``Accept-Language: hu``) and checked
twice: the Hungarian text is there, and no English text of the monitoring catalogue
(the words of an entry of two or more words, between its placeholders, whose
translation differs) nor of Django's own catalogues is left on it
(``tests/hungarian_pages.py``).
"""

import html
import json
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone, translation

from monitoring import services, tasks
from monitoring.models import HealthCheckRun, RunState
from monitoring.repair import claim
from tests.admin_pages import DESYNCS, RUN_CHECK, RUNS, inject, key, make_pairs
from tests.hungarian_pages import django_english_left, english_fragments

HEALTH = reverse("monitoring:sync-health")
ORM_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
# The pair kinds' labels (the licences app's catalogue) show on these pages too.
KIND_LABELS = ("level mismatch", "missing licence", "missing progress")
ENGLISH = english_fragments(("monitoring",))


def english_left(page: str) -> list[str]:
    text = html.unescape(page)
    return sorted(f for f in (*ENGLISH, *KIND_LABELS) if f in text) + django_english_left(page)


@pytest.fixture(autouse=True)
def _language_back():
    """A request's LocaleMiddleware leaves its language active in the thread: the tests
    after these (a command's output, say) run in the default language again."""
    yield
    translation.deactivate()


@pytest.fixture
def hu_client(staff_client):
    staff_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "hu"
    return staff_client


@pytest.fixture
def desyncs():
    """Five pairs, three of them out of sync: one of each kind."""
    return inject(make_pairs(5))


def run_page(run) -> str:
    return reverse("admin:monitoring_healthcheckrun_change", args=[run.pk])


def progress_url(run) -> str:
    return reverse("admin:monitoring_healthcheckrun_progress", args=[run.pk])


def confirm(client, selected, *, across=False, follow=True):
    data = {
        "action": "repair_selected",
        ACTION_CHECKBOX_NAME: list(selected),
        "select_across": "1" if across else "0",
        "post": "yes",
        "reason": "tömeges import",
    }
    return client.post(DESYNCS, data, follow=follow)


def test_the_catalogue_gives_english_text_to_look_for():
    assert {"Desync cases (live)", "Repair selected desync cases", "Run check now"} <= ENGLISH


@pytest.mark.django_db
def test_the_desync_cases_list_with_every_kind_reads_hungarian(hu_client, desyncs):
    page = hu_client.get(DESYNCS).content.decode()
    assert '<html lang="hu"' in page
    for text in ("Eltérések (élő)", "A kiválasztott eltérések javítása", "Szinkronfigyelés"):
        assert text in page
    assert page.count("szint</a>") >= 4  # "4. szint": the rows' level links
    assert english_left(page) == []


@pytest.mark.django_db
def test_the_repair_confirmation_reads_hungarian(hu_client, desyncs, settings):
    settings.SYNC_ADMIN_INLINE_REPAIR_LIMIT = 1  # three cases: the background note shows
    page = hu_client.post(
        DESYNCS, {"action": "repair_selected", ACTION_CHECKBOX_NAME: [key(u) for u in desyncs]}
    ).content.decode()
    assert "Javítja ezt a(z) 3 eltérést?" in page
    assert 'id="repair-in-background"' in page and "háttérfolyamat" in page
    assert "Igen, javítom" in page
    assert english_left(page) == []


@pytest.mark.django_db
def test_the_message_after_an_inline_repair_reads_hungarian(hu_client, desyncs):
    response = confirm(hu_client, [key(u) for u in desyncs])
    (message,) = response.context["messages"]
    assert str(message).startswith("3 eltérés kijavítva (")
    assert "; 0 már egyezett. Új állapotellenőrzés: rendben, 100,00% egyezik," in str(message)
    assert english_left(response.content.decode()) == []


@pytest.mark.django_db
def test_a_refused_repair_says_so_in_hungarian(hu_client, desyncs):
    holder = claim.claim_repair(specialization=None)
    response = confirm(hu_client, [key(u) for u in desyncs])
    (message,) = response.context["messages"]
    assert str(message).startswith(
        f"A javítás elutasítva: már fut egy javítás ({holder.pk}. futás, indította: rendszer, "
    )
    assert holder.state == RunState.RUNNING
    assert english_left(response.content.decode()) == []


@pytest.mark.django_db
def test_a_queued_repair_s_message_and_run_page_read_hungarian(hu_client, desyncs, settings):
    settings.TASKS = ORM_BACKEND
    response = confirm(hu_client, ["x"], across=True)
    run = HealthCheckRun.objects.get()
    (message,) = response.context["messages"]
    assert str(message) == (
        f"Az összes egyező eltérés javítása sorba állítva ({run.pk}. futás): egy háttérfolyamat"
        " javítja őket, ez az oldal követi a haladását."
    )
    page = response.content.decode()
    for text in ("A javítás haladása", "Háttérfolyamatra vár (", "hátralévő idő", "Sorban áll"):
        assert text in page
    assert english_left(page) == []


@pytest.mark.django_db
def test_the_runs_list_with_its_trend_and_run_check_now_reads_hungarian(hu_client, desyncs):
    services.run_health_check()
    for user in desyncs:  # repaired since: the trend goes from critical to healthy
        confirm(hu_client, [key(user)])
    page = hu_client.get(RUNS).content.decode()
    for text in (
        "Állapotellenőrzési futások",
        "Ellenőrzés most",
        "Egyezési arány az utolsó 4 futásban",  # the SVG's label
        "Egyezési arány, az utolsó 4 futás",  # its heading
        "Kritikus",
        "Rendben",
        "60,00%",
    ):
        assert text in page, text
    assert english_left(page) == []

    response = hu_client.post(RUN_CHECK, follow=True)
    (message,) = response.context["messages"]
    assert str(message).startswith("Ellenőrzés rögzítve: rendben, 100,00% egyezik, 0 eltérés 5 ")
    assert english_left(response.content.decode()) == []


@pytest.mark.django_db
def test_a_finished_check_s_page_with_its_sample_reads_hungarian(hu_client, desyncs):
    run = services.run_health_check().run
    page = hu_client.get(run_page(run)).content.decode()
    for text in (
        "Eltérésminta",
        "felhasználóazonosító",
        "A(z) 3 eltérésből 3 maradt meg",
        "kritikus",
    ):
        assert text in page, text
    assert english_left(page) == []


@pytest.mark.django_db
def test_a_running_repair_s_page_and_progress_json_read_hungarian(hu_client):
    run = claim.queue_repair(specialization=None, planned=3000)
    now = timezone.now()
    HealthCheckRun.objects.filter(pk=run.pk).update(
        state=RunState.RUNNING,
        started_at=now - timedelta(seconds=10),
        updated_at=now,
        examined=1200,
        repaired=1100,
    )
    page = hu_client.get(run_page(run)).content.decode()
    assert "Javítás: 1\xa0200 / 3\xa0000 pár megvizsgálva, 1\xa0100 kijavítva." in page
    assert english_left(page) == []

    progress = hu_client.get(progress_url(run)).json()
    assert (progress["state"], progress["state_label"]) == ("running", "Fut")  # keys stay
    assert progress["done_text"] == "1\xa0200 / 3\xa0000"
    assert progress["rate_text"] == "120 pár/s"
    assert progress["left_text"] == "15 mp"
    texts = " ".join(str(v) for k, v in progress.items() if k.endswith(("text", "message")))
    assert english_left(texts) == []


@pytest.mark.django_db
def test_a_done_repair_s_page_reads_hungarian(hu_client, desyncs):
    confirm(hu_client, [key(u) for u in desyncs])
    run = HealthCheckRun.objects.get(kind="repair")
    page = hu_client.get(run_page(run)).content.decode()
    assert "Kész: 3 kijavítva, 0 már egyezett. Utólagos ellenőrzés: rendben, 100,00%" in page
    assert english_left(page) == []
    progress = hu_client.get(progress_url(run)).json()
    assert progress["message"].startswith("Kész: 3 kijavítva") and progress["finished"] is True


@pytest.mark.django_db
def test_the_health_endpoint_s_reason_follows_the_language_its_keys_and_status_do_not(
    staff_client, desyncs
):
    services.run_health_check()
    english = staff_client.get(HEALTH).json()
    hungarian = staff_client.get(HEALTH, headers={"accept-language": "hu"}).json()
    assert english["reason"] == "3 of 5 pairs out of sync (40.00%)"
    assert hungarian["reason"] == "5 párból 3 eltér (40.00%)"
    assert hungarian.keys() == english.keys()
    assert (hungarian["status"], hungarian["by_kind"]) == (english["status"], english["by_kind"])
    assert hungarian["status"] == "critical"


@pytest.mark.django_db
def test_the_health_endpoint_without_a_run_says_so_in_hungarian(staff_client):
    response = staff_client.get(HEALTH, headers={"accept-language": "hu"})
    assert response.status_code == 503
    assert json.loads(response.content)["reason"] == "még nincs rögzített szinkronellenőrzés"
    assert response.json()["status"] == "unknown"


@pytest.mark.django_db
def test_a_refused_job_s_reason_reads_in_its_reader_s_language_and_is_kept_in_english(
    hu_client, staff, desyncs, settings
):
    settings.TASKS = ORM_BACKEND
    confirm(hu_client, ["x"], across=True)
    queued = HealthCheckRun.objects.get()
    holder = claim.claim_repair(specialization=None)  # cron's repair started meanwhile
    tasks.repair_job.call(
        run_id=queued.pk, user_id=staff.pk, pairs=None, query="", reason="tömeges import"
    )
    queued.refresh_from_db()
    assert queued.state == RunState.FAILED
    assert queued.state_reason.startswith(  # what scripts and the job's result read
        f"refused: a repair is already running (run {holder.pk} by system on "
    )
    page = hu_client.get(run_page(queued)).content.decode()
    assert (
        f"Sikertelen: elutasítva: már fut egy javítás ({holder.pk}. futás, indította: rendszer,"
        in page
    )
    assert "hatókör: mind)" in page
    assert english_left(page) == []
    english = hu_client.get(run_page(queued), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"Failed: refused: a repair is already running (run {holder.pk} by system" in english


@pytest.mark.django_db
def test_a_run_taken_over_says_so_in_hungarian(hu_client):
    silent = claim.claim_repair(specialization=None)
    HealthCheckRun.objects.filter(pk=silent.pk).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    rerun = claim.claim_repair(specialization=None)
    silent.refresh_from_db()
    assert f"(more than 120 s): taken over by run {rerun.pk}" in silent.state_reason
    page = hu_client.get(run_page(silent)).content.decode()
    assert f"(több mint 120 s): a(z) {rerun.pk}. futás vette át" in page
    assert english_left(page) == []
    progress = hu_client.get(progress_url(silent)).json()
    assert progress["message"].startswith("Megszakadt: ")
    assert progress["message"].endswith(f"a(z) {rerun.pk}. futás vette át.")


@pytest.mark.django_db
def test_a_desync_case_is_named_with_its_kind_in_hungarian(hu_client, desyncs):
    mismatch = desyncs[0]
    url = reverse("admin:monitoring_desynccase_change", args=[key(mismatch)])
    page = hu_client.get(url).content.decode()
    assert f"<title>{mismatch.pk}/PLAYER szinteltérés |" in page
    assert english_left(page) == []

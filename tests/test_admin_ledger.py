"""The ledger in the admin: a progress row's events, and staff corrections entered as events."""

import pytest
from django.test import Client
from django.urls import reverse

from licenses import admin_ledger
from licenses.models import UserLicense
from specializations.models import ProgressEvent, SpecializationProgress
from specializations.services import update_progress

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(staff):
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def progress(student):
    update_progress(student, "PLAYER", xp_gained=1_000, sessions_completed=4)
    return SpecializationProgress.objects.get(student=student)


def page(progress) -> str:
    return reverse("admin:specializations_specializationprogress_change", args=[progress.pk])


def form_data(client, url, **changes) -> dict:
    """The change form's current values, then ``changes``."""
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    return {name: value for name, value in {**data, **changes}.items() if value is not None}


def test_the_totals_are_read_only_on_the_progress_page(staff_client, progress):
    url = page(progress)
    form = staff_client.get(url).context["adminform"].form
    assert not {"total_xp", "completed_sessions", "last_activity"} & set(form.fields)

    staff_client.post(url, form_data(staff_client, url, total_xp=99_999))

    progress.refresh_from_db()
    assert progress.total_xp == 1_000


def test_a_staff_correction_is_an_admin_event_naming_the_staff_user(staff_client, staff, progress):
    url = page(progress)

    response = staff_client.post(
        url,
        form_data(
            staff_client, url, correct_xp_gained=-250, correct_sessions_completed=1, reason="typo"
        ),
    )

    assert response.status_code == 302
    event = ProgressEvent.objects.first()  # newest first
    assert (event.source, event.actor, event.reason) == ("admin", staff, "typo")
    assert (event.xp_gained, event.sessions_completed) == (-250, 1)
    assert event.idempotency_key.startswith("admin-form-")
    progress.refresh_from_db()
    assert (progress.total_xp, progress.completed_sessions) == (750, 5)


def test_a_correction_needs_a_reason(staff_client, progress):
    url = page(progress)

    response = staff_client.post(url, form_data(staff_client, url, correct_xp_gained=5))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["reason"] == [admin_ledger.CORRECTION_REASON_REQUIRED]
    assert ProgressEvent.objects.count() == 1


def test_a_correction_below_zero_is_refused_on_the_form_naming_the_field(staff_client, progress):
    url = page(progress)

    response = staff_client.post(
        url, form_data(staff_client, url, correct_xp_gained=-1_001, reason="too much")
    )

    assert response.context["adminform"].form.errors["correct_xp_gained"] == [
        "xp_gained=-1001 would make the total negative (-1)"
    ]
    assert ProgressEvent.objects.count() == 1


def test_the_same_correction_form_sent_twice_applies_once(staff_client, progress):
    url = page(progress)
    data = form_data(staff_client, url, correct_xp_gained=100, reason="bonus")

    staff_client.post(url, data)
    staff_client.post(url, data)  # a double click, or the browser's resend

    progress.refresh_from_db()
    assert progress.total_xp == 1_100
    assert ProgressEvent.objects.count() == 2


def test_a_correction_is_checked_against_the_totals_at_sending(staff_client, progress):
    url = page(progress)
    data = form_data(staff_client, url, correct_xp_gained=-1_000, reason="reset")
    update_progress(progress.student, "PLAYER", xp_gained=-500)  # meanwhile, elsewhere

    response = staff_client.post(url, data)

    assert response.context["adminform"].form.errors["correct_xp_gained"] == [
        "xp_gained=-1000 would make the total negative (-500)"
    ]
    progress.refresh_from_db()
    assert progress.total_xp == 500


def test_a_form_sent_again_with_other_amounts_is_refused_with_a_message(staff_client, progress):
    url = page(progress)
    data = form_data(staff_client, url, correct_xp_gained=100, reason="bonus")
    staff_client.post(url, data)

    # Back in the browser, another amount, sent again: the form's key is already used.
    response = staff_client.post(url, {**data, "correct_xp_gained": 200}, follow=True)

    (message,) = [str(m) for m in response.context["messages"] if m.level_tag == "error"]
    assert message.startswith("Nothing was changed: idempotency_key='admin-form-")
    assert "source='admin' was already used for other amounts" in message
    progress.refresh_from_db()
    assert progress.total_xp == 1_100


def test_a_level_change_and_a_correction_are_saved_together(staff_client, staff, progress):
    url = page(progress)

    staff_client.post(
        url, form_data(staff_client, url, current_level=3, correct_xp_gained=10, reason="audit")
    )

    progress.refresh_from_db()
    assert (progress.current_level, progress.total_xp) == (3, 1_010)
    assert UserLicense.objects.get(user=progress.student).current_level == 3
    assert ProgressEvent.objects.first().actor == staff


def test_the_page_lists_the_rows_events_newest_first(staff_client, progress):
    update_progress(progress.student, "PLAYER", xp_gained=7, reason="quiz 12", source="quiz")

    response = staff_client.get(page(progress))

    ledger = response.context["ledger"]
    assert [e.reason for e in ledger["events"]] == ["quiz 12", ""]
    assert ledger["count"] == 2 and ledger["older"] is None
    assert b"Ledger: 2 events" in response.content and b"quiz 12" in response.content


def test_the_events_are_numbered_pages_first_then_pages_by_key(
    staff_client, progress, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(admin_ledger, "EVENTS_PER_PAGE", 2)
    monkeypatch.setattr(admin_ledger, "NUMBERED_PAGES", 2)
    for n in range(6):
        update_progress(progress.student, "PLAYER", xp_gained=1, reason=f"e{n}")
    url, seen, links = page(progress), [], []
    ledger = staff_client.get(url).context["ledger"]
    while True:
        seen += [e.reason for e in ledger["events"]]
        if ledger["older"] is None:
            break
        links.append(ledger["older"].split("=")[0])
        ledger = staff_client.get(url + ledger["older"]).context["ledger"]

    assert seen == ["e5", "e4", "e3", "e2", "e1", "e0", ""]
    assert links == ["?events_page", "?events_before", "?events_before"]
    assert staff_client.get(url + "?events_page=3").status_code == 400


@pytest.mark.parametrize("query", ["?events_page=0", "?events_page=x", "?events_before=-1"])
def test_a_bad_ledger_page_parameter_is_a_400_naming_it(staff_client, progress, query):
    response = staff_client.get(page(progress) + query)

    assert response.status_code == 400
    assert query[1:].split("=")[0].encode() in response.content


def test_the_ledger_page_costs_the_same_queries_for_many_events(
    staff_client, progress, django_assert_max_num_queries
):
    url = page(progress)
    staff_client.get(url)
    with django_assert_max_num_queries(40) as few:
        staff_client.get(url)
    for _ in range(30):
        update_progress(progress.student, "PLAYER", xp_gained=1, actor=progress.student)

    with django_assert_max_num_queries(len(few)):
        staff_client.get(url)


def test_a_runs_page_shows_its_ledger_sample(staff_client, progress, check_sync):
    from monitoring.models import HealthCheckRun

    SpecializationProgress.objects.filter(pk=progress.pk).update(total_xp=12_400)
    check_sync("--ledger")
    run = HealthCheckRun.objects.get()

    response = staff_client.get(reverse("admin:monitoring_healthcheckrun_change", args=[run.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "<td>total_xp</td><td>12400</td><td>1000</td>" in html

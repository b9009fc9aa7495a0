"""Repair from the Desync cases page: confirmation, audit rows, all matching cases across
pages in committed batches, permission, a bad reason."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from licenses import consistency
from licenses.guard import unguarded
from licenses.models import LicenseProgression, UserLicense
from monitoring import tasks
from monitoring.admin import desync_cases
from monitoring.models import HealthCheckRun
from monitoring.repair import batch, plan
from specializations.models import SpecializationProgress
from tests.admin_pages import (
    DESYNCS,
    inject,
    key,
    make_pairs,
    staff_with,
)
from tests.factories import delete_row


def _repair_all(client, query="", **extra):
    return client.post(
        DESYNCS + query,
        {
            "action": "repair_selected",
            ACTION_CHECKBOX_NAME: ["x"],
            "select_across": "1",
            "post": "yes",
            **extra,
        },
        follow=True,
    )


def _log_inserts(queries) -> int:
    return sum(q["sql"].startswith('INSERT INTO "django_admin_log"') for q in queries)


@pytest.mark.django_db
def test_repair_asks_for_confirmation_first(staff_client):
    mismatch, *_ = inject(make_pairs(5))
    response = staff_client.post(
        DESYNCS, {"action": "repair_selected", ACTION_CHECKBOX_NAME: [key(mismatch)]}
    )
    assert response.status_code == 200
    assert b"Yes, repair" in response.content
    assert mismatch.username.encode() in response.content
    assert len(consistency.violations()) == 3


@pytest.mark.django_db
def test_repair_fixes_the_selected_cases_with_audit_rows(staff_client, staff):
    mismatch, no_licence, no_progress = inject(make_pairs(5))
    response = staff_client.post(
        DESYNCS,
        {
            "action": "repair_selected",
            ACTION_CHECKBOX_NAME: [key(mismatch), key(no_licence)],
            "post": "yes",
            "reason": "ticket 42",
        },
        follow=True,
    )
    assert response.status_code == 200
    message = str(next(iter(response.context["messages"])))
    assert "Repaired 2 desync case(s) (level mismatch 1, missing licence 1)" in message
    remaining = consistency.violations()
    assert [(v.user_id, v.kind) for v in remaining] == [(no_progress.pk, "missing_progress")]
    assert UserLicense.objects.get(user=mismatch).current_level == 4
    assert UserLicense.objects.get(user=no_licence).current_level == 2
    audit = LicenseProgression.objects.filter(license__user__in=[mismatch, no_licence])
    assert {(row.advanced_by_id, row.reason) for row in audit.exclude(reason="seeded")} == {
        (staff.pk, "ticket 42")
    }
    assert audit.exclude(reason="seeded").count() == 2
    logged = LogEntry.objects.filter(user=staff)
    assert {entry.object_id for entry in logged} == {
        str(UserLicense.objects.get(user=u).pk) for u in (mismatch, no_licence)
    }
    run = HealthCheckRun.objects.latest()
    assert (run.repaired, run.inconsistent, run.triggered_by_id) == (2, 1, staff.pk)


@pytest.mark.django_db
def test_repair_of_all_matching_cases_across_pages(staff_client, monkeypatch):
    monkeypatch.setattr(desync_cases.DesyncCaseAdmin, "list_per_page", 2)
    users = make_pairs(12)
    inject(users)  # one of each kind on the first three
    for user in users[3:9]:  # six more without progress: seven in all, over four pages
        delete_row(SpecializationProgress, user, "PLAYER")
    page = staff_client.get(DESYNCS + "?kind=missing_progress")
    assert len(page.context["cl"].result_list) == 2  # the page shows two of the seven
    assert page.context["cl"].result_count == 7
    staff_client.post(
        DESYNCS + "?kind=missing_progress",
        {
            "action": "repair_selected",
            ACTION_CHECKBOX_NAME: [key(users[2])],  # only one ticked on the page
            "select_across": "1",
            "post": "yes",
        },
    )
    assert sorted(v.kind for v in consistency.violations()) == ["level_mismatch", "missing_license"]
    assert SpecializationProgress.objects.filter(student__in=users[2:9]).count() == 7


@pytest.mark.django_db
def test_repair_of_more_cases_than_the_actions_sample_logs_every_repaired_pair(staff_client, staff):
    users = make_pairs(1005)
    SpecializationProgress.objects.filter(student__in=users).update(current_level=3)
    confirmation = staff_client.post(
        DESYNCS, {"action": "repair_selected", ACTION_CHECKBOX_NAME: ["x"], "select_across": "1"}
    )
    assert b"Repair 1005 desync cases?" in confirmation.content
    assert "and 905 more" in confirmation.content.decode()

    with CaptureQueriesContext(connection) as queries:
        response = _repair_all(staff_client)
    # Every matching case is a background job (here the immediate backend), then its run page.
    assert response.context["progress"].message.startswith("Done: repaired 1,005, 0 already")
    assert plan.ACTIONS_SAMPLE < 1005
    logged = LogEntry.objects.filter(user=staff)
    assert logged.count() == 1005
    assert set(logged.values_list("object_id", flat=True)) == {
        str(pk) for pk in UserLicense.objects.values_list("pk", flat=True)
    }
    # One bulk insert of log entries per repair batch (of 500), not one per pair.
    assert _log_inserts(queries) == 3


@pytest.mark.django_db
def test_repair_log_entries_do_not_depend_on_the_actions_sample(
    staff_client, staff, monkeypatch, settings
):
    monkeypatch.setattr(plan, "ACTIONS_SAMPLE", 5)
    settings.SYNC_REPAIR_BATCH_SIZE = 7
    monkeypatch.setattr(tasks, "STREAM_CHUNK_SIZE", 4)  # streamed across the batches
    player = make_pairs(30)
    SpecializationProgress.objects.filter(student__in=player[:20]).update(current_level=5)
    UserLicense.objects.filter(user__in=player[20:]).update(current_level=4, max_achieved_level=4)
    inject(make_pairs(5, specialization="COACH"), specialization="COACH")

    with CaptureQueriesContext(connection) as queries:
        response = _repair_all(staff_client, "?specialization__code__exact=PLAYER")
    assert response.context["progress"].message.startswith("Done: repaired 30, 0 already")
    assert LogEntry.objects.filter(user=staff).count() == 30
    assert _log_inserts(queries) == 5  # ceil(30 / 7) batches
    assert {v.specialization_id for v in consistency.violations()} == {"COACH"}
    assert HealthCheckRun.objects.latest().repaired == 30


def test_repair_of_all_streams_the_keys_across_committed_batches(
    committed_db, monkeypatch, settings
):
    # Committed for real: the key stream (a server-side cursor on PostgreSQL) is read
    # between batches that each commit, as in production.
    settings.SYNC_REPAIR_BATCH_SIZE = 6
    monkeypatch.setattr(tasks, "STREAM_CHUNK_SIZE", 4)
    staff = get_user_model().objects.create_user(
        username="committed-staff", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(staff)
    users = make_pairs(40)
    with unguarded():  # a bad import, committed
        SpecializationProgress.objects.filter(student__in=users[:25]).update(current_level=3)
        UserLicense.objects.filter(user__in=users[25:]).update(
            current_level=5, max_achieved_level=5
        )

    response = _repair_all(client)
    assert response.context["progress"].message.startswith("Done: repaired 40, 0 already")
    assert consistency.count_pairs().inconsistent == 0
    assert LogEntry.objects.filter(user=staff).count() == 40


def test_a_database_error_mid_repair_keeps_the_committed_batches_and_says_so(
    committed_db, monkeypatch, settings
):
    settings.SYNC_REPAIR_BATCH_SIZE = 6
    staff = get_user_model().objects.create_user(
        username="interrupted-staff", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(staff)
    users = make_pairs(15)
    with unguarded():
        SpecializationProgress.objects.filter(student__in=users).update(current_level=3)
    real_batch, calls = batch.repair_batch, []

    def second_batch_fails(keys, **kwargs):
        calls.append(keys)
        if len(calls) == 2:
            raise OperationalError("deadlock detected")
        return real_batch(keys, **kwargs)

    monkeypatch.setattr(batch, "repair_batch", second_batch_fails)
    response = _repair_all(client)
    assert response.context["progress"].message == (
        "Interrupted: deadlock detected. 6 repaired before it stopped are kept."
    )
    assert LogEntry.objects.filter(user=staff).count() == 6
    assert consistency.count_pairs().inconsistent == 9


@pytest.mark.django_db
def test_repair_with_an_over_long_reason_shows_an_error_and_writes_nothing(staff_client):
    mismatch, no_licence, _ = inject(make_pairs(5))
    history = LicenseProgression.objects.count()
    response = staff_client.post(
        DESYNCS,
        {
            "action": "repair_selected",
            ACTION_CHECKBOX_NAME: [key(mismatch), key(no_licence)],
            "post": "yes",
            "reason": "x" * 256,
        },
        follow=True,
    )
    (message,) = response.context["messages"]
    assert message.level_tag == "error"
    assert "nothing was changed" in str(message) and "reason=" in str(message)
    assert len(consistency.violations()) == 3
    assert LicenseProgression.objects.count() == history
    assert not LogEntry.objects.exists()
    assert not HealthCheckRun.objects.exists()


@pytest.mark.django_db
def test_repair_needs_change_permission_on_licences():
    mismatch, *_ = inject(make_pairs(5))
    viewer = staff_with("monitoring.view_desynccase")
    page = viewer.get(DESYNCS)
    assert page.status_code == 200
    assert b"repair_selected" not in page.content
    viewer.post(
        DESYNCS, {"action": "repair_selected", ACTION_CHECKBOX_NAME: [key(mismatch)], "post": "yes"}
    )
    assert len(consistency.violations()) == 3

    repairer = staff_with(
        "monitoring.view_desynccase", "licenses.change_userlicense", username="repairer"
    )
    assert b"repair_selected" in repairer.get(DESYNCS).content
    repairer.post(
        DESYNCS, {"action": "repair_selected", ACTION_CHECKBOX_NAME: [key(mismatch)], "post": "yes"}
    )
    assert len(consistency.violations()) == 2

"""The admin's repair goes through the one repair-and-record service: refused while
another repair runs, recorded when interrupted."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.db import OperationalError
from django.urls import reverse

from licenses import consistency
from licenses.models import LicenseProgression
from monitoring.models import HealthCheckRun
from monitoring.repair import batch, claim
from tests.factories import make_desynced_pairs

DESYNCS = reverse("admin:monitoring_desynccase_changelist")


def repair_all(client, query=""):
    return client.post(
        DESYNCS + query,
        {
            "action": "repair_selected",
            ACTION_CHECKBOX_NAME: ["x"],
            "select_across": "1",
            "post": "yes",
        },
        follow=True,
    )


@pytest.mark.django_db
def test_a_repair_while_another_runs_is_refused_with_the_holder_and_writes_nothing(staff_client):
    make_desynced_pairs(4, level=2)
    holder = claim.claim_repair(specialization="PLAYER")
    (message,) = repair_all(staff_client, "?specialization__code__exact=PLAYER").context["messages"]
    assert message.level_tag == "error"
    assert str(message).startswith(f"Repair refused: a repair is already running (run {holder.pk} ")
    assert "scope PLAYER" in str(message)
    assert list(HealthCheckRun.objects.all()) == [holder]
    assert not LogEntry.objects.exists() and not LicenseProgression.objects.exists()
    assert consistency.count_pairs().inconsistent == 4


@pytest.mark.django_db
def test_a_repair_in_another_specialization_is_not_refused(staff_client):
    make_desynced_pairs(2, specialization="COACH", level=2)
    claim.claim_repair(specialization="PLAYER")
    page = repair_all(staff_client, "?specialization__code__exact=COACH")
    assert page.context["progress"].message.startswith("Done: repaired 2, 0 already in sync")


def test_an_interrupted_admin_repair_is_recorded_with_what_it_committed(
    committed_db, staff_client, staff, monkeypatch, settings
):
    settings.SYNC_REPAIR_BATCH_SIZE = 6
    make_desynced_pairs(15, level=2)  # committed, let through the commit guard on purpose
    real, calls = batch.repair_batch, []

    def second_batch_fails(keys, **kwargs):
        calls.append(keys)
        if len(calls) == 2:
            raise OperationalError("deadlock detected")
        return real(keys, **kwargs)

    monkeypatch.setattr(batch, "repair_batch", second_batch_fails)
    page = repair_all(staff_client)  # a background job (the immediate backend here), then its page
    assert page.context["progress"].message == (
        "Interrupted: deadlock detected. 6 repaired before it stopped are kept."
    )
    run = HealthCheckRun.objects.get()
    assert (run.kind, run.state, run.repaired, run.triggered_by) == (
        "repair",
        "interrupted",
        6,
        staff,
    )
    assert run.state_reason == "deadlock detected"
    assert LogEntry.objects.filter(user=staff).count() == 6

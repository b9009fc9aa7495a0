"""A repair is recorded as it happens, one at a time per scope, and counted exactly once."""

import os
import signal
import socket
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, OperationalError
from django.utils import timezone

from common.stop import stopped_by_signals
from licenses import consistency
from licenses.models import LicenseProgression
from monitoring import runs, selectors
from monitoring.exceptions import (
    BadBatchSize,
    BadLockTimeout,
    RepairAlreadyRunning,
    RepairInterrupted,
)
from monitoring.models import HealthCheckRun
from monitoring.repair import batch, claim
from monitoring.services import RepairOptions, repair, run_health_check
from tests.factories import make_desynced_pairs, make_pairs

pytestmark = pytest.mark.django_db


def fetch(run) -> HealthCheckRun:
    return HealthCheckRun.objects.get(pk=run.pk)


def holder(specialization=None, *, age_seconds=0) -> HealthCheckRun:
    """A repair claimed as another process would, reporting ``age_seconds`` ago."""
    run = claim.claim_repair(specialization=specialization)
    HealthCheckRun.objects.filter(pk=run.pk).update(
        host="other-host", pid=4242, updated_at=timezone.now() - timedelta(seconds=age_seconds)
    )
    return fetch(run)


def test_a_repair_run_is_recorded_when_it_starts_and_reports_every_batch(staff):
    make_desynced_pairs(12)
    seen = []

    def on_batch(actions):
        (run,) = HealthCheckRun.objects.all()
        seen.append((run.state, run.repaired, run.examined, run.updated_at))

    report = repair(repaired_by=staff, options=RepairOptions(batch_size=5, on_batch=on_batch))
    assert [(state, repaired, examined) for state, repaired, examined, _ in seen] == [
        ("running", 0, 0),
        ("running", 5, 5),
        ("running", 10, 10),
    ]
    assert seen[0][3] < seen[1][3] < seen[2][3]  # the heartbeat moves with every batch
    run = fetch(report.run)
    assert (run.kind, run.state, run.dry_run, run.specialization) == ("repair", "done", False, "")
    assert (run.triggered_by, run.host, run.pid) == (staff, socket.gethostname(), os.getpid())
    assert (run.repaired, run.examined, run.skipped_locked) == (12, 12, 0)
    assert run.started_at <= run.updated_at == run.finished_at
    # The check after the repair is the run's result.
    assert (run.total_checked, run.inconsistent, run.status) == (12, 0, "healthy")
    assert report.check.run == report.run and report.check.inconsistent == 0
    assert selectors.latest_run() == run


def test_a_check_is_recorded_as_it_starts_and_ends_failed_with_the_reason(monkeypatch):
    make_pairs(3)
    states = []

    def failing_count(**kwargs):
        states.append(list(HealthCheckRun.objects.values_list("state", flat=True)))
        raise OperationalError("server closed the connection unexpectedly\nmore detail")

    monkeypatch.setattr(consistency, "check_pairs", failing_count)
    with pytest.raises(DatabaseError):
        run_health_check()
    assert states == [["running"]]
    run = HealthCheckRun.objects.get()
    assert (run.kind, run.state, run.total_checked, run.status) == ("check", "failed", None, "")
    assert run.state_reason == "server closed the connection unexpectedly"
    assert run.finished_at is not None
    assert selectors.latest_run() is None  # a failed check says nothing about the data


def test_a_database_error_mid_repair_ends_the_run_interrupted_with_what_it_committed(
    monkeypatch,
):
    make_desynced_pairs(12)
    real, calls = batch.repair_batch, []

    def third_batch_fails(keys, **kwargs):
        calls.append(keys)
        if len(calls) == 3:
            raise OperationalError("could not serialize access\nDETAIL: ...")
        return real(keys, **kwargs)

    monkeypatch.setattr(batch, "repair_batch", third_batch_fails)
    with pytest.raises(RepairInterrupted) as caught:
        repair(options=RepairOptions(batch_size=5))
    assert caught.value.done == 10
    run = HealthCheckRun.objects.get()
    assert (run.state, run.repaired, run.state_reason) == (
        "interrupted",
        10,
        "could not serialize access",
    )
    assert consistency.count_pairs().inconsistent == 2
    assert selectors.total_repairs() == 10


def test_a_failing_page_of_keys_is_an_interruption_like_a_failing_batch():
    users = make_desynced_pairs(12)

    def keys():  # a key stream whose next page cannot be read
        yield from ((u.pk, "PLAYER") for u in users[:7])
        raise OperationalError("server closed the connection unexpectedly")

    with pytest.raises(RepairInterrupted) as caught:
        repair(pairs=keys(), options=RepairOptions(batch_size=5))
    assert caught.value.done == 5
    run = HealthCheckRun.objects.get()
    assert (run.state, run.repaired) == ("interrupted", 5)
    assert run.state_reason == "server closed the connection unexpectedly"


def test_an_error_from_on_batch_ends_the_run_failed_and_keeps_nothing_of_that_batch():
    make_desynced_pairs(4)

    def on_batch(actions):
        raise RuntimeError("log write failed")

    with pytest.raises(RuntimeError):
        repair(options=RepairOptions(on_batch=on_batch))
    run = HealthCheckRun.objects.get()
    assert (run.state, run.repaired) == ("failed", 0)
    assert run.state_reason == "RuntimeError: log write failed"
    assert consistency.count_pairs().inconsistent == 4


def test_timeout_stops_between_batches_and_records_what_it_did():
    make_desynced_pairs(15)

    def slow_batch(actions):
        time.sleep(0.15)

    with pytest.raises(RepairInterrupted, match=r"after 5 repaired pair\(s\).*timeout=0.1 s"):
        repair(options=RepairOptions(batch_size=5, timeout=0.1, on_batch=slow_batch))
    run = HealthCheckRun.objects.get()
    assert (run.state, run.repaired) == ("interrupted", 5)
    assert "timeout=0.1 seconds reached" in run.state_reason
    assert consistency.count_pairs().inconsistent == 10


def test_a_dry_run_is_recorded_as_one_changes_nothing_and_claims_nothing():
    make_desynced_pairs(3)
    live = holder()  # a repair in progress elsewhere does not stop a dry run
    report = repair(dry_run=True)
    run = fetch(report.run)
    assert (run.kind, run.dry_run, run.state, run.repaired, run.examined) == (
        "repair",
        True,
        "done",
        0,
        3,
    )
    assert report.repaired == 3 and consistency.count_pairs().inconsistent == 3
    assert fetch(live).state == "running"
    assert repair(dry_run=True, options=RepairOptions(record=False)).run is None


def test_a_second_repair_is_refused_at_once_naming_the_holder(staff):
    make_desynced_pairs(3)
    live = claim.claim_repair(specialization=None, triggered_by=staff)
    started = time.monotonic()
    with pytest.raises(RepairAlreadyRunning) as caught:
        repair()
    assert time.monotonic() - started < 1
    since = f"{live.started_at:%Y-%m-%d %H:%M:%S} UTC"
    assert str(caught.value) == (
        f"a repair is already running (run {live.pk} by staff-admin on {socket.gethostname()}"
        f" pid {os.getpid()} since {since}, scope all)"
    )
    assert HealthCheckRun.objects.count() == 1  # the refusal wrote nothing
    assert consistency.count_pairs().inconsistent == 3


@pytest.mark.parametrize(
    "held, asked, refused",
    [
        (None, None, True),
        (None, "COACH", True),  # every specialization overlaps each one
        ("PLAYER", None, True),
        ("PLAYER", "PLAYER", True),
        ("PLAYER", "COACH", False),
    ],
)
def test_overlapping_scopes_are_refused_and_disjoint_ones_run(held, asked, refused):
    make_desynced_pairs(2, specialization="COACH")
    holder(held)
    if refused:
        with pytest.raises(RepairAlreadyRunning):
            repair(specialization=asked)
    else:
        assert repair(specialization=asked).repaired == 2


def test_plain_checks_run_beside_a_repair():
    make_desynced_pairs(2)
    holder()
    assert run_health_check().inconsistent == 2


def test_a_holder_that_stopped_reporting_reads_as_interrupted_and_stops_blocking(settings):
    settings.SYNC_RUN_INTERRUPTED_AFTER_SECONDS = 30
    make_desynced_pairs(3)
    silent = holder(age_seconds=31)
    assert selectors.run_state(silent, now=timezone.now()) == "interrupted"
    report = repair()
    assert report.repaired == 3
    silent = fetch(silent)
    assert silent.state == "interrupted"
    assert f"taken over by run {report.run.pk}" in silent.state_reason
    assert "(more than 30 s)" in silent.state_reason
    fresh = holder(age_seconds=29)
    assert selectors.run_state(fresh, now=timezone.now()) == "running"


def test_latest_run_is_the_latest_finished_check_over_every_specialization():
    make_desynced_pairs(2)
    done_check = run_health_check().run
    repair(specialization="PLAYER")  # a scoped run says nothing of the rest
    failed = runs.start_run(kind="check", specialization=None)
    runs.end_run(failed, "failed", "boom")
    assert selectors.latest_run() == done_check
    full = repair().run  # a repair's check after it counts
    holder()  # running: no totals yet
    assert selectors.latest_run() == full


def test_repairs_total_counts_each_pair_once_in_the_run_that_changed_it():
    make_desynced_pairs(7)
    first = repair(options=RepairOptions(batch_size=3))
    second = repair()
    assert (first.repaired, second.repaired) == (7, 0)
    assert selectors.total_repairs() == 7
    assert LicenseProgression.objects.count() == 7


@pytest.mark.parametrize("value", [0, -1, 10_001, 2.5, True, "500"])
def test_batch_size_is_checked(value):
    with pytest.raises(BadBatchSize, match=r"^batch_size="):
        repair(options=RepairOptions(batch_size=value))


@pytest.mark.parametrize("value", [0, -1, 601, float("nan"), float("inf")])
def test_lock_timeout_is_checked_and_named(value, settings):
    with pytest.raises(BadLockTimeout, match=r"^lock_timeout="):
        repair(options=RepairOptions(lock_timeout=value))
    settings.SYNC_REPAIR_LOCK_TIMEOUT = value  # refused where the setting is read
    with pytest.raises(ImproperlyConfigured, match=r"^SYNC_REPAIR_LOCK_TIMEOUT="):
        repair()
    assert not HealthCheckRun.objects.exists()


def test_a_signal_stops_the_repair_before_its_next_batch_and_the_previous_handler_runs():
    make_desynced_pairs(12)
    earlier = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: earlier.append(signum))

    def signalled(actions):
        os.kill(os.getpid(), signal.SIGTERM)  # a real signal, mid-batch

    try:
        with (
            stopped_by_signals(signal.SIGTERM) as stop,
            pytest.raises(RepairInterrupted, match=r"after 5 repaired pair\(s\).*SIGTERM"),
        ):
            repair(options=RepairOptions(batch_size=5, on_batch=signalled, stop=stop))
        assert earlier == [signal.SIGTERM]  # e.g. db_worker's: finish after this job
        run = HealthCheckRun.objects.get()
        assert (run.state, run.state_reason, run.repaired) == (
            "interrupted",
            "stopped by SIGTERM",
            5,
        )
        assert consistency.count_pairs().inconsistent == 7  # the batch it was in is kept
    finally:
        signal.signal(signal.SIGTERM, previous)

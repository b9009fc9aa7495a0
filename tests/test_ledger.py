"""The ledger of progress events: one event per change of the totals, exactly once per key."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection, transaction
from django.db.models import Sum

from licenses.models import LicenseProgression, UserLicense
from licenses.services import update_level_atomic
from specializations.exceptions import (
    IdempotencyConflict,
    InvalidAmount,
    InvalidLedgerValue,
    NegativeAmount,
    UnknownUser,
)
from specializations.models import LEDGER_FIELDS, ProgressEvent, SpecializationProgress
from specializations.services import enroll, update_progress

pytestmark = pytest.mark.django_db


def totals(student, specialization="PLAYER") -> dict[str, int]:
    row = SpecializationProgress.objects.get(student=student, specialization_id=specialization)
    return {amount: getattr(row, total) for amount, total in LEDGER_FIELDS}


def ledger_sums(student, specialization="PLAYER") -> dict[str, int]:
    events = ProgressEvent.objects.filter(
        progress__student=student, progress__specialization_id=specialization
    )
    sums = events.aggregate(**{amount: Sum(amount) for amount, _ in LEDGER_FIELDS})
    return {amount: value or 0 for amount, value in sums.items()}


def database_state() -> tuple:
    return (
        list(SpecializationProgress.objects.values().order_by("pk")),
        list(UserLicense.objects.values().order_by("pk")),
        LicenseProgression.objects.count(),
        list(ProgressEvent.objects.values().order_by("pk")),
    )


# --- One event per call -------------------------------------------------------------------------


def test_enrolment_writes_no_event(student):
    enroll(student, "PLAYER")

    assert not ProgressEvent.objects.exists()


def test_update_progress_records_its_event_with_everything_the_sender_said(student, staff):
    when = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)

    result = update_progress(
        student,
        "COACH",
        xp_gained=35_000,
        sessions_completed=18,
        projects_completed=1,
        theory_hours=40,
        practice_hours=60,
        idempotency_key="attendance-2026-11-30-17",
        source="attendance",
        reason="Saturday session",
        occurred_at=when,
        actor=staff,
    )

    event = ProgressEvent.objects.get()
    assert result.event == event and result.replayed is False
    assert (event.progress, event.source, event.idempotency_key, event.reason) == (
        result.progress,
        "attendance",
        "attendance-2026-11-30-17",
        "Saturday session",
    )
    assert (event.actor, event.occurred_at, event.level_before, event.level_after) == (
        staff,
        when,
        1,
        2,
    )
    assert event.amounts() == {
        "xp_gained": 35_000,
        "sessions_completed": 18,
        "projects_completed": 1,
        "theory_hours": 40,
        "practice_hours": 60,
    }
    assert event.recorded_at is not None


def test_a_call_without_a_key_is_recorded_by_the_system_now(student):
    before = datetime.now(UTC)

    update_progress(student, "PLAYER", xp_gained=100)

    event = ProgressEvent.objects.get()
    assert (event.source, event.idempotency_key, event.actor, event.reason) == (
        "system",
        None,
        None,
        "",
    )
    assert event.occurred_at >= before


def test_every_call_without_a_key_writes_its_own_event(student):
    for _ in range(3):
        update_progress(student, "PLAYER", xp_gained=100)

    assert ProgressEvent.objects.count() == 3
    assert totals(student)["xp_gained"] == 300


def test_the_totals_are_the_sum_of_the_events_after_every_kind_of_change(student, staff):
    update_progress(student, "COACH", xp_gained=20_000, sessions_completed=16, theory_hours=31)
    update_progress(student, "COACH", practice_hours=55, idempotency_key="k1", source="quiz")
    update_progress(student, "COACH", xp_gained=-500, theory_hours=-1, reason="double entry")
    update_level_atomic(
        student, "COACH", new_level=3, xp_change=700, sessions_change=-2, advanced_by=staff
    )

    assert totals(student, "COACH") == ledger_sums(student, "COACH")
    assert ProgressEvent.objects.count() == 4


def test_a_level_set_with_amounts_is_an_admin_event_naming_the_staff_user(student, staff):
    update_progress(student, "PLAYER", xp_gained=1_000)

    update_level_atomic(
        student, "PLAYER", new_level=4, xp_change=250, advanced_by=staff, reason="ticket 7"
    )

    event = ProgressEvent.objects.first()  # newest first
    assert (event.source, event.actor, event.reason, event.level_before, event.level_after) == (
        "admin",
        staff,
        "ticket 7",
        1,
        4,
    )
    assert event.amounts()["xp_gained"] == 250


def test_a_level_set_without_amounts_changes_no_total_and_writes_no_event(student):
    update_level_atomic(student, "PLAYER", new_level=3, reason="placement")

    assert not ProgressEvent.objects.exists()


def test_a_failing_transaction_takes_its_event_with_it(student):
    with pytest.raises(RuntimeError), transaction.atomic():
        update_progress(student, "PLAYER", xp_gained=100, idempotency_key="k", source="quiz")
        raise RuntimeError("the caller's own work failed")

    assert not ProgressEvent.objects.exists()
    # The key was never used: sending it again applies it.
    assert update_progress(student, "PLAYER", xp_gained=100, idempotency_key="k", source="quiz")
    assert totals(student)["xp_gained"] == 100


# --- Exactly once -------------------------------------------------------------------------------


def test_the_same_key_and_amounts_again_is_a_replay_that_writes_nothing(student):
    first = update_progress(
        student, "PLAYER", xp_gained=25_000, sessions_completed=12, idempotency_key="r-1"
    )
    before = database_state()

    again = update_progress(
        student, "PLAYER", xp_gained=25_000, sessions_completed=12, idempotency_key="r-1"
    )

    assert database_state() == before
    assert again.replayed is True and first.replayed is False
    assert (again.old_level, again.new_level, again.levels_gained) == (1, 2, 1)
    assert again.event == first.event
    assert again.progress.total_xp == 25_000


def test_a_replay_returns_the_first_outcome_after_the_totals_moved_on(student):
    update_progress(student, "PLAYER", xp_gained=25_000, sessions_completed=12, idempotency_key="a")
    update_progress(student, "PLAYER", xp_gained=30_000, sessions_completed=5)

    again = update_progress(
        student, "PLAYER", xp_gained=25_000, sessions_completed=12, idempotency_key="a"
    )

    assert (again.replayed, again.old_level, again.new_level) == (True, 1, 2)
    assert again.progress.current_level == 3  # the row as it is now
    assert totals(student)["xp_gained"] == 55_000


def test_a_replayed_correction_is_not_refused_once_the_totals_are_lower(student):
    update_progress(student, "PLAYER", xp_gained=500)
    update_progress(student, "PLAYER", xp_gained=-300, idempotency_key="fix-1", source="admin")
    update_progress(student, "PLAYER", xp_gained=-200)

    again = update_progress(
        student, "PLAYER", xp_gained=-300, idempotency_key="fix-1", source="admin"
    )

    assert again.replayed is True
    assert totals(student)["xp_gained"] == 0


def test_keys_are_unique_per_source_not_across_sources(student):
    update_progress(student, "PLAYER", xp_gained=100, idempotency_key="42", source="quiz")
    second = update_progress(
        student, "PLAYER", xp_gained=100, idempotency_key="42", source="tournament"
    )

    assert second.replayed is False
    assert totals(student)["xp_gained"] == 200


@pytest.mark.parametrize(
    "changed",
    [
        {"xp_gained": 101},
        {"sessions_completed": 1},
        {"projects_completed": 1},
        {"theory_hours": 1},
        {"practice_hours": 1},
        {"specialization": "COACH"},
    ],
    ids=lambda changed: next(iter(changed)),
)
def test_the_same_key_with_anything_else_is_a_conflict_that_writes_nothing(student, changed):
    update_progress(student, "PLAYER", xp_gained=100, idempotency_key="q-9", source="quiz")
    before = database_state()
    call = {"xp_gained": 100, "specialization": "PLAYER", **changed}
    specialization = call.pop("specialization")

    with pytest.raises(IdempotencyConflict) as raised:
        update_progress(student, specialization, idempotency_key="q-9", source="quiz", **call)

    assert database_state() == before
    assert "idempotency_key='q-9' of source='quiz'" in str(raised.value)
    assert raised.value.event.amounts()["xp_gained"] == 100


def test_the_same_key_for_another_student_is_a_conflict(student, make_user):
    other = make_user()
    update_progress(student, "PLAYER", xp_gained=100, idempotency_key="q-1", source="quiz")

    with pytest.raises(IdempotencyConflict) as raised:
        update_progress(other, "PLAYER", xp_gained=100, idempotency_key="q-1", source="quiz")

    assert f"user {student.pk} PLAYER" in str(raised.value)
    assert not SpecializationProgress.objects.filter(student=other).exists()


def test_a_replay_inside_the_callers_transaction_leaves_it_usable(student):
    update_progress(student, "PLAYER", xp_gained=100, idempotency_key="t", source="quiz")

    with transaction.atomic():
        again = update_progress(
            student, "PLAYER", xp_gained=100, idempotency_key="t", source="quiz"
        )
        update_progress(student, "PLAYER", xp_gained=5)  # the transaction still works

    assert again.replayed is True
    assert totals(student)["xp_gained"] == 105


def test_a_replay_costs_the_lock_the_refused_insert_and_one_read(
    student, django_assert_num_queries
):
    update_progress(student, "PLAYER", xp_gained=100, idempotency_key="c", source="quiz")

    # SAVEPOINT, lock, update and refused insert (one statement on PostgreSQL), ROLLBACK TO
    # and RELEASE, the first event.
    with django_assert_num_queries(6 if connection.vendor == "postgresql" else 7):
        assert update_progress(
            student, "PLAYER", xp_gained=100, idempotency_key="c", source="quiz"
        ).replayed


# --- Corrections --------------------------------------------------------------------------------


def test_a_negative_amount_corrects_a_total(student):
    update_progress(student, "PLAYER", xp_gained=1_000, sessions_completed=3)

    update_progress(student, "PLAYER", xp_gained=-400, sessions_completed=-1, reason="typo")

    assert totals(student)["xp_gained"] == 600
    assert totals(student)["sessions_completed"] == 2
    assert ProgressEvent.objects.first().amounts()["xp_gained"] == -400


@pytest.mark.parametrize(
    "amount, total",
    [
        ("xp_gained", "total_xp"),
        ("sessions_completed", "completed_sessions"),
        ("projects_completed", "completed_projects"),
        ("theory_hours", "theory_hours_completed"),
        ("practice_hours", "practice_hours_completed"),
    ],
)
def test_a_correction_below_zero_is_refused_naming_the_field(student, amount, total):
    update_progress(student, "COACH", **{amount: 5})
    before = database_state()

    with pytest.raises(NegativeAmount) as raised:
        update_progress(student, "COACH", **{amount: -6})

    assert str(raised.value) == f"{amount}=-6 would make the total negative (-1)"
    assert raised.value.field == amount
    assert database_state() == before


def test_a_correction_never_lowers_a_level(student):
    update_progress(student, "PLAYER", xp_gained=25_000, sessions_completed=12)

    result = update_progress(student, "PLAYER", xp_gained=-20_000, reason="wrongly awarded")

    assert (result.old_level, result.new_level) == (2, 2)
    assert UserLicense.objects.get(user=student).current_level == 2
    assert ProgressEvent.objects.first().level_after == 2


# --- Bad ledger input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, text",
    [
        ({"source": ""}, "source='' must not be empty"),
        ({"source": " quiz"}, "source=' quiz' must not be empty or start or end with a space"),
        ({"source": "q" * 101}, "is longer than 100 characters"),
        ({"source": "quiz\x00"}, "contains the control character U+0000"),
        ({"source": None}, "source=None must be a string"),
        ({"source": "opening"}, "source='opening' is reserved"),
        ({"idempotency_key": ""}, "idempotency_key='' must not be empty"),
        ({"idempotency_key": 42}, "idempotency_key=42 must be a string"),
        ({"idempotency_key": "k" * 256}, "is longer than 255 characters"),
        ({"occurred_at": "2026-11-30"}, "occurred_at='2026-11-30' must be a datetime"),
        ({"occurred_at": datetime(2026, 11, 30)}, "must carry a time zone"),
        (
            {"occurred_at": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14)))},
            "is out of range in UTC",
        ),
    ],
    ids=lambda value: repr(value)[:30],
)
def test_bad_ledger_input_is_refused_naming_the_field_and_writes_nothing(student, given, text):
    with pytest.raises(InvalidLedgerValue) as raised:
        update_progress(student, "PLAYER", xp_gained=10, **given)

    assert text in str(raised.value)
    assert raised.value.field == next(iter(given))
    assert not SpecializationProgress.objects.exists()


def test_an_unsaved_actor_is_refused_naming_the_field(student, django_user_model):
    with pytest.raises(UnknownUser) as raised:
        update_progress(student, "PLAYER", xp_gained=10, actor=django_user_model(username="x"))

    assert raised.value.field == "actor"


def test_the_sender_may_date_an_event_in_the_past(student):
    when = datetime.now(UTC) - timedelta(days=400)

    update_progress(student, "PLAYER", xp_gained=10, occurred_at=when)

    assert ProgressEvent.objects.get().occurred_at == when


@pytest.mark.parametrize("value", [2**31, -(2**31)])
def test_an_amount_beyond_the_32_bit_range_is_refused_naming_it(student, value):
    with pytest.raises(InvalidAmount) as raised:
        update_progress(student, "PLAYER", sessions_completed=value)

    assert str(raised.value) == (
        f"sessions_completed={value} is out of range (at most 2147483647 either way)"
    )
    assert not SpecializationProgress.objects.exists()


def test_also_runs_in_the_events_transaction_and_not_for_a_replay(student):
    seen = []
    update_progress(student, "PLAYER", xp_gained=5, idempotency_key="a", also=seen.append)
    assert [(u.event.idempotency_key, u.progress.total_xp) for u in seen] == [("a", 5)]
    update_progress(student, "PLAYER", xp_gained=5, idempotency_key="a", also=seen.append)
    assert len(seen) == 1  # the replay wrote nothing, so nothing rides along

    def fail(update):
        raise RuntimeError("the answer could not be recorded")

    with pytest.raises(RuntimeError):
        update_progress(student, "PLAYER", xp_gained=7, idempotency_key="b", also=fail)
    assert totals(student)["xp_gained"] == 5  # the event went with it
    assert not ProgressEvent.objects.filter(idempotency_key="b").exists()

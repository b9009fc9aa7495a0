"""update_progress_many: update_progress's meaning for a batch, at a fixed cost."""

import threading

import pytest
from django.db import connection

from licenses.models import LicenseProgression, UserLicense
from specializations.bulk import EventSpec, update_progress_many
from specializations.catalogue import get_specialization
from specializations.exceptions import IdempotencyConflict, InvalidLedgerValue, NegativeAmount
from specializations.models import ProgressEvent, SpecializationProgress
from specializations.services import enroll, update_progress
from tests.conftest import requires_postgres
from tests.factories import set_license_level

pytestmark = pytest.mark.django_db


def spec(student, key, xp=0, sessions=0, code="PLAYER", **extra):
    amounts = {"xp_gained": xp, "sessions_completed": sessions}
    return EventSpec(
        student_id=student.pk, specialization=code, idempotency_key=key, amounts=amounts, **extra
    )


def totals(student, code="PLAYER"):
    row = SpecializationProgress.objects.get(student=student, specialization_id=code)
    return row.total_xp, row.completed_sessions, row.current_level


def test_a_batch_ends_where_the_same_calls_one_by_one_end(make_user):
    level_2 = get_specialization("PLAYER").levels[1]
    a, b = make_user(), make_user()
    steps = [(10, 1), (level_2.required_xp, level_2.required_sessions), (5, 0)]
    update_progress_many([spec(a, f"a{i}", xp, s) for i, (xp, s) in enumerate(steps)],
                         source="batch")  # fmt: skip
    for i, (xp, s) in enumerate(steps):
        update_progress(b, "PLAYER", xp_gained=xp, sessions_completed=s,
                        source="one", idempotency_key=f"b{i}")  # fmt: skip
    assert totals(a) == totals(b) == (level_2.required_xp + 15, level_2.required_sessions + 1, 2)
    history = lambda user: list(  # noqa: E731
        LicenseProgression.objects.filter(license__user=user).values_list("from_level", "to_level")
    )
    assert history(a) == history(b) and UserLicense.objects.get(user=a).current_level == 2
    keep = ("level_before", "level_after", "xp_gained", "sessions_completed")
    events = lambda user: list(  # noqa: E731
        ProgressEvent.objects.filter(progress__student=user).order_by("id").values_list(*keep)
    )
    assert events(a) == events(b)


def test_each_update_shows_the_row_as_its_event_left_it(student):
    updates = update_progress_many([spec(student, "k1", 10), spec(student, "k2", 5)],
                                   source="batch")  # fmt: skip
    assert [u.progress.total_xp for u in updates] == [10, 15]
    assert [u.event.pk is not None for u in updates] == [True, True]


def test_a_key_seen_before_is_a_replay_with_the_first_outcome(student):
    update_progress(student, "PLAYER", xp_gained=10, source="batch", idempotency_key="k1")
    updates = update_progress_many([spec(student, "k1", 10), spec(student, "k2", 1)],
                                   source="batch")  # fmt: skip
    assert [u.replayed for u in updates] == [True, False]
    assert totals(student)[0] == 11


def test_a_key_is_per_source_another_sources_use_of_it_is_not_a_replay(student):
    update_progress(student, "PLAYER", xp_gained=10, source="elsewhere", idempotency_key="k1")
    updates = update_progress_many([spec(student, "k1", 10)], source="batch")
    assert [u.replayed for u in updates] == [False]
    assert totals(student)[0] == 20


def test_a_key_seen_before_with_other_amounts_conflicts_and_writes_nothing(student):
    update_progress(student, "PLAYER", xp_gained=10, source="batch", idempotency_key="k1")
    with pytest.raises(IdempotencyConflict):
        update_progress_many([spec(student, "k2", 1), spec(student, "k1", 99)], source="batch")
    assert totals(student)[0] == 10


def test_a_key_twice_in_one_batch_is_refused(student):
    with pytest.raises(InvalidLedgerValue, match="given twice"):
        update_progress_many([spec(student, "k1", 1), spec(student, "k1", 1)], source="batch")


def test_a_total_below_zero_refuses_the_whole_batch(student):
    with pytest.raises(NegativeAmount, match="xp_gained=-5"):
        update_progress_many([spec(student, "k1", 3), spec(student, "k2", -5)], source="batch")
    assert not SpecializationProgress.objects.exists()


def test_the_statements_do_not_grow_with_the_batch(make_user, django_assert_num_queries):
    students = [make_user() for _ in range(30)]
    for student in students:
        enroll(student, "PLAYER")
    # Savepoint, the earlier keys, the read, the lock (where rows lock), the totals, the
    # events, release.
    statements = 7 if connection.features.has_select_for_update else 6
    with django_assert_num_queries(statements):
        update_progress_many([spec(s, f"k{i}", 1) for i, s in enumerate(students)], source="b")
    with django_assert_num_queries(statements):
        update_progress_many([spec(s, f"j{i}", 1) for i, s in enumerate(students[:3])], source="b")


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_batches_over_the_same_students_in_opposite_orders_do_not_deadlock(committed_db):
    from django.contrib.auth import get_user_model

    students = [get_user_model().objects.create(username=f"b{i}") for i in range(40)]
    for student in students:
        enroll(student, "PLAYER")
    errors = []

    def run(order, prefix):
        try:
            for round_ in range(5):
                update_progress_many(
                    [spec(s, f"{prefix}{round_}-{s.pk}", 1) for s in order], source="race"
                )
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(students, "up")),
               threading.Thread(target=run, args=(students[::-1], "down"))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert {totals(s)[0] for s in students} == {10}


def test_a_licence_ahead_raises_the_row_and_the_last_update_says_so(make_user):
    level_2 = get_specialization("PLAYER").levels[1]
    a, b = make_user(), make_user()
    for user in (a, b):
        enroll(user, "PLAYER")
    set_license_level([a, b], "PLAYER", 4)  # ahead, as a desync leaves it
    steps = [(5, 0), (level_2.required_xp, level_2.required_sessions)]
    batch = update_progress_many([spec(a, f"a{i}", xp, s) for i, (xp, s) in enumerate(steps)],
                                 source="batch")  # fmt: skip
    one = [
        update_progress(b, "PLAYER", xp_gained=xp, sessions_completed=s, source="one",
                        idempotency_key=f"b{i}")
        for i, (xp, s) in enumerate(steps)
    ]  # fmt: skip
    outcome = lambda updates: [  # noqa: E731
        (u.old_level, u.new_level, u.event.level_after, u.progress.current_level) for u in updates
    ]
    assert outcome(batch) == outcome(one) == [(1, 1, 1, 1), (1, 4, 4, 4)]
    assert totals(a)[2] == totals(b)[2] == 4


@requires_postgres
def test_the_earlier_keys_are_probed_not_found_by_reading_the_sources_history(student):
    """The planner's statistics of the ledger can be stale (a client's first day, or
    autovacuum behind): looking up a batch's keys must still read only their rows, not
    every event of the source (a batch's cost would grow with the client's history)."""
    import json

    from django.test.utils import CaptureQueriesContext

    from specializations import bulk

    enroll(student, "PLAYER")
    update_progress_many([spec(student, "seed", 1)], source="history")
    table = bulk.quoted(ProgressEvent)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")  # statistics of a source with one event
        cursor.execute(
            f"INSERT INTO {table} (progress_id, source, idempotency_key, reason, occurred_at,"
            " recorded_at, level_before, level_after, xp_gained, sessions_completed,"
            " projects_completed, theory_hours, practice_hours)"
            " SELECT progress_id, source, 'old-' || g, '', occurred_at, recorded_at, 1, 1,"
            " 1, 0, 0, 0, 0"
            f" FROM {table}, generate_series(1, 5000) AS g WHERE idempotency_key = 'seed'"
        )
    keys = [f"old-{i}" for i in range(1, 201)]

    with CaptureQueriesContext(connection) as queries:
        found = bulk._first_events("history", keys)
    assert sorted(found) == sorted(keys)
    lookup = next(q["sql"] for q in queries.captured_queries if "unnest" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {lookup}")
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def rows_read(node) -> int:
        own = node["Actual Rows"] * node["Actual Loops"] if node.get("Relation Name") else 0
        return own + sum(rows_read(child) for child in node.get("Plans", []))

    assert rows_read(plan[0]["Plan"]) == len(keys)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_changed_while_the_batch_waits_for_its_lock_is_counted_as_it_is_now(committed_db):
    """Another transaction holds a row the batch needs, adds to it and commits while the
    batch waits: the batch's events start from the totals that commit left, not from
    anything it read before its lock."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    students = [get_user_model().objects.create(username=f"w{i}") for i in range(3)]
    for student in students:
        enroll(student, "PLAYER")
    row = SpecializationProgress.objects.get(student=students[1])
    other = connections.create_connection("default")
    other.set_autocommit(False)
    with other.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {SpecializationProgress._meta.db_table} WHERE id = %s FOR UPDATE",
            [row.pk],
        )
    done, errors = [], []

    def batch():
        try:
            done.append(update_progress_many(
                [spec(s, f"wait-{s.pk}", 10, 1) for s in students], source="waits"
            ))  # fmt: skip
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=batch)
    thread.start()
    try:
        with other.cursor() as cursor:  # the batch is waiting for the row
            for _ in range(200):
                cursor.execute("SELECT pg_stat_clear_snapshot()")  # fresh, in a transaction
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    break
                threading.Event().wait(0.05)
            else:
                pytest.fail(f"the batch never waited for the row: {done or errors}")
            cursor.execute(
                f"UPDATE {SpecializationProgress._meta.db_table}"
                " SET total_xp = total_xp + 100, completed_sessions = completed_sessions + 2"
                " WHERE id = %s",
                [row.pk],
            )
        other.commit()
    finally:
        other.close()
        thread.join(timeout=60)
    [updates] = done
    assert [(u.progress.total_xp, u.progress.completed_sessions) for u in updates] == [
        (10, 1), (110, 3), (10, 1)
    ]  # fmt: skip
    assert [totals(s)[:2] for s in students] == [(10, 1), (110, 3), (10, 1)]

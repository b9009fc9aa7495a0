"""Repair against real row locks of other PostgreSQL connections: bounded waits, exact counts."""

import threading
import time

import psycopg2
import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection

from licenses import consistency
from licenses.models import LicenseProgression, UserLicense
from licenses.services import update_level_atomic
from monitoring.exceptions import RepairInterrupted
from monitoring.models import HealthCheckRun
from monitoring.repair.audit import logged_as
from monitoring.services import RepairOptions, repair
from specializations.models import SpecializationProgress
from specializations.services import enroll, update_progress
from tests.conftest import requires_postgres
from tests.factories import delete_row, make_desynced_pairs, make_pairs, set_progress_level

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LICENCE = UserLicense._meta.db_table
PROGRESS = SpecializationProgress._meta.db_table


def other_connection():
    return psycopg2.connect(**connection.get_connection_params())


def in_thread(work) -> threading.Thread:
    """``work`` on its own thread and database connection."""

    def run():
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_row_held_by_another_connection_is_skipped_counted_and_left(committed_db):
    users = make_desynced_pairs(20)
    locker = other_connection()
    with locker.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {LICENCE} WHERE user_id = %s FOR UPDATE", [users[0].pk])
    try:
        started = time.monotonic()
        report = repair(options=RepairOptions(lock_timeout=0.3, batch_size=5))
        elapsed = time.monotonic() - started
    finally:
        locker.rollback()
        locker.close()
    assert elapsed < 1.5  # the retry window is one lock timeout; nothing waited on the row
    assert (report.repaired, report.skipped_locked) == (19, 1)
    assert report.skipped_sample == [(users[0].pk, "PLAYER")]
    run = HealthCheckRun.objects.get()
    assert (run.state, run.repaired, run.skipped_locked) == ("done", 19, 1)
    assert run.skipped_sample == [[users[0].pk, "PLAYER"]]
    assert run.inconsistent == 1  # the check after it says what is left
    assert repair().repaired == 1  # released: the next run repairs it
    assert LicenseProgression.objects.count() == 20  # one audit row per licence raised


def test_a_row_released_within_the_lock_timeout_is_repaired_by_the_retry(committed_db):
    users = make_desynced_pairs(6)
    locker = other_connection()
    with locker.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {LICENCE} WHERE user_id = %s FOR UPDATE", [users[3].pk])
    release = threading.Timer(0.2, locker.rollback)
    release.start()
    try:
        report = repair(options=RepairOptions(lock_timeout=2))
    finally:
        release.join()
        locker.close()
    assert (report.repaired, report.skipped_locked) == (6, 0)


def test_update_progress_outside_the_batch_never_waits_for_it(committed_db):
    users = make_desynced_pairs(5)
    for user in users:
        enroll(user, "COACH")  # the same students, in sync in another specialization
    (bystander,) = make_pairs(1)
    waited = []

    def on_batch(actions):
        # The batch holds its locks now: students outside it must not notice.
        def student():
            started = time.monotonic()
            update_progress(users[0], "COACH", xp_gained=10)
            update_progress(bystander, "PLAYER", xp_gained=10)
            waited.append(time.monotonic() - started)

        thread = in_thread(student)
        thread.join(5)
        assert not thread.is_alive(), "update_progress waited for the repair batch"

    assert repair(options=RepairOptions(on_batch=on_batch)).repaired == 5
    assert waited and waited[0] < 1


def test_a_write_to_a_pair_inside_the_batch_waits_for_that_batch_only(committed_db):
    users = make_desynced_pairs(5)
    threads, done = [], []

    def on_batch(actions):
        def staff_edit():
            # Locks the progress row, then the licence, which this batch is raising.
            update_level_atomic(users[1], "PLAYER", new_level=5, reason="staff edit")
            done.append(time.monotonic())

        threads.append(in_thread(staff_edit))
        time.sleep(0.3)
        assert not done  # waiting on the licence this batch is raising

    repair(options=RepairOptions(on_batch=on_batch))
    finished = time.monotonic()
    threads[0].join(5)
    assert done and done[0] - finished < 1  # released by the batch's commit
    assert consistency.count_pairs().inconsistent == 0
    assert UserLicense.objects.get(user=users[1]).current_level == 5


def test_a_progress_row_another_transaction_inserted_is_not_counted(committed_db, staff):
    missing, behind = make_pairs(2, level=4)
    delete_row(SpecializationProgress, missing, "PLAYER")
    set_progress_level(behind, "PLAYER", 5)
    racer = other_connection()
    with racer.cursor() as cursor:  # an enrolment of the same pair, not yet committed
        cursor.execute(
            f"INSERT INTO {PROGRESS} (student_id, specialization_id, current_level, total_xp,"
            " completed_sessions, completed_projects, theory_hours_completed,"
            " practice_hours_completed) VALUES (%s, 'PLAYER', 4, 0, 0, 0, 0, 0)",
            [missing.pk],
        )
    commit = threading.Timer(0.3, racer.commit)
    commit.start()
    try:
        report = repair(
            repaired_by=staff,
            options=RepairOptions(on_batch=logged_as(staff)),
        )
    finally:
        commit.join()
        racer.close()
    assert (report.repaired, dict(report.by_kind)) == (1, {"level_mismatch": 1})
    assert HealthCheckRun.objects.get().repaired == 1
    assert list(LogEntry.objects.values_list("object_id", flat=True)) == [
        str(UserLicense.objects.get(user=behind).pk)
    ]
    assert consistency.count_pairs().inconsistent == 0


def test_an_insert_racing_past_the_lock_timeout_leaves_only_its_own_pair(committed_db):
    missing, *behind = make_pairs(4, level=4)
    delete_row(SpecializationProgress, missing, "PLAYER")
    for user in behind:
        set_progress_level(user, "PLAYER", 5)
    racer = other_connection()
    with racer.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {PROGRESS} (student_id, specialization_id, current_level, total_xp,"
            " completed_sessions, completed_projects, theory_hours_completed,"
            " practice_hours_completed) VALUES (%s, 'PLAYER', 4, 0, 0, 0, 0, 0)",
            [missing.pk],
        )
    try:
        started = time.monotonic()
        report = repair(options=RepairOptions(lock_timeout=0.3))
        elapsed = time.monotonic() - started
    finally:
        racer.rollback()
        racer.close()
    # The batch's insert waited 0.3 s, then the batch was retried in pieces: the
    # other pairs went through, the raced one waited once more and was left.
    assert (report.repaired, report.skipped_locked) == (3, 1)
    assert report.skipped_sample == [(missing.pk, "PLAYER")]
    assert elapsed < 3
    assert HealthCheckRun.objects.get().repaired == 3


def test_a_run_marked_interrupted_by_another_repair_stops_without_its_last_batch(committed_db):
    make_desynced_pairs(10)
    taker = other_connection()

    def on_batch(actions):
        run = HealthCheckRun.objects.get()
        if run.repaired == 5:  # second batch: another repair takes over, committed
            with taker.cursor() as cursor:
                cursor.execute(
                    "UPDATE monitoring_healthcheckrun SET state = 'interrupted',"
                    " state_reason = 'taken over' WHERE id = %s",
                    [run.pk],
                )
            taker.commit()

    try:
        with pytest.raises(RepairInterrupted, match="marked interrupted by another repair"):
            repair(options=RepairOptions(batch_size=5, on_batch=on_batch))
    finally:
        taker.close()
    run = HealthCheckRun.objects.get()
    assert (run.state, run.repaired, run.state_reason) == ("interrupted", 5, "taken over")
    assert consistency.count_pairs().inconsistent == 5  # its second batch rolled back


def test_a_locked_student_row_leaves_only_that_students_new_licence(committed_db):
    # A new licence references its student: a session holding the student's row
    # FOR UPDATE (deleting the account, say) makes that key-share wait run out.
    users = make_pairs(3, level=2)
    for user in users:
        delete_row(UserLicense, user, "PLAYER")
    locker = other_connection()
    with locker.cursor() as cursor:
        cursor.execute("SELECT 1 FROM auth_user WHERE id = %s FOR UPDATE", [users[0].pk])
    try:
        started = time.monotonic()
        report = repair(options=RepairOptions(lock_timeout=0.2))
        elapsed = time.monotonic() - started
    finally:
        locker.rollback()
        locker.close()
    assert (report.repaired, report.skipped_locked) == (2, 1)
    assert report.skipped_sample == [(users[0].pk, "PLAYER")]
    assert elapsed < 3
    assert LicenseProgression.objects.count() == 2
    assert not UserLicense.objects.filter(user=users[0]).exists()


def test_a_pair_changed_while_repair_waited_for_its_lock_is_replanned(committed_db):
    # The plan made from the listing (licence 2 -> 3) must not be written once the
    # lock is granted: under the lock the pair is re-read, and it is in sync at 5.
    (user,) = make_desynced_pairs(1)
    locker = other_connection()
    with locker.cursor() as cursor:
        cursor.execute(f"UPDATE {PROGRESS} SET current_level = 5 WHERE student_id = %s", [user.pk])
        cursor.execute(
            f"UPDATE {LICENCE} SET current_level = 5, max_achieved_level = 5 WHERE user_id = %s",
            [user.pk],
        )
    release = threading.Timer(0.3, locker.commit)
    release.start()
    started = time.monotonic()
    try:
        report = repair(options=RepairOptions(lock_timeout=3))
    finally:
        release.join()
        locker.close()
    assert time.monotonic() - started >= 0.25  # it listed the pair, then waited for it
    licence = UserLicense.objects.get(user=user)
    assert (report.repaired, report.skipped_locked) == (0, 0)
    assert (licence.current_level, licence.max_achieved_level) == (5, 5)
    assert SpecializationProgress.objects.get(student=user).current_level == 5
    assert not LicenseProgression.objects.exists()


def test_a_pair_changed_after_it_was_listed_is_re_read_under_the_lock(committed_db):
    # Batches repair what the key stream listed; between the listing and a batch's
    # locks another transaction fixed the second pair (both rows to 5). Writing the
    # listing's plan (licence 2 -> 3) would lower it; under the lock it is re-read.
    first, second = make_desynced_pairs(2)

    def fix_the_second_pair_elsewhere(actions):
        if [(a.user_id, a.specialization_id) for a in actions] != [(first.pk, "PLAYER")]:
            return
        other = other_connection()
        try:
            with other.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {PROGRESS} SET current_level = 5 WHERE student_id = %s", [second.pk]
                )
                cursor.execute(
                    f"UPDATE {LICENCE} SET current_level = 5, max_achieved_level = 5"
                    " WHERE user_id = %s",
                    [second.pk],
                )
            other.commit()
        finally:
            other.close()

    report = repair(options=RepairOptions(batch_size=1, on_batch=fix_the_second_pair_elsewhere))
    assert (report.repaired, report.skipped) == (1, 1)
    licence = UserLicense.objects.get(user=second)
    assert (licence.current_level, licence.max_achieved_level) == (5, 5)
    assert LicenseProgression.objects.filter(license=licence).count() == 0


def test_a_licence_another_transaction_inserted_is_not_counted(committed_db, staff):
    missing, behind = make_pairs(2, level=4)
    delete_row(UserLicense, missing, "PLAYER")
    set_progress_level(behind, "PLAYER", 5)
    racer = other_connection()
    with racer.cursor() as cursor:  # the licence issued elsewhere, not yet committed
        cursor.execute(
            f"INSERT INTO {LICENCE} (user_id, specialization_id, current_level,"
            " max_achieved_level, started_at, is_active) VALUES (%s, 'PLAYER', 4, 4, now(), true)",
            [missing.pk],
        )
    commit = threading.Timer(0.3, racer.commit)
    commit.start()
    try:
        report = repair(
            repaired_by=staff,
            options=RepairOptions(on_batch=logged_as(staff)),
        )
    finally:
        commit.join()
        racer.close()
    assert (report.repaired, dict(report.by_kind)) == (1, {"level_mismatch": 1})
    assert HealthCheckRun.objects.get().repaired == 1
    assert LogEntry.objects.count() == 1  # the raised licence only
    assert not LicenseProgression.objects.filter(license__user=missing).exists()
    assert consistency.count_pairs().inconsistent == 0

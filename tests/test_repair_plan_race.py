"""A pair another transaction changes while a repair batch waits before its row locks.

The batch's first write, the insert of a missing progress row, waits on another
transaction inserting the same row; that transaction also puts a second pair of
the batch in sync, and commits while the batch waits. The batch takes its row
locks after that wait and must re-read its pairs under them: the plan of the
listing (and any reading before the locks) would lower the second licence.
"""

import threading
import time

import psycopg2
import pytest
from django.db import connection

from licenses import consistency
from licenses.models import LicenseProgression, UserLicense
from monitoring.services import RepairOptions, repair
from specializations.models import SpecializationProgress
from tests.conftest import requires_postgres
from tests.factories import delete_row, make_pairs, set_progress_level

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LICENCE = UserLicense._meta.db_table
PROGRESS = SpecializationProgress._meta.db_table


def commit_once_waited_for(other, *, timeout: float = 10) -> threading.Thread:
    """Commit ``other`` as soon as another session waits on it (or after ``timeout``)."""
    pid = other.get_backend_pid()

    def watch():
        watcher = psycopg2.connect(**connection.get_connection_params())
        watcher.autocommit = True
        deadline = time.monotonic() + timeout
        try:
            with watcher.cursor() as cursor:
                while time.monotonic() < deadline:
                    cursor.execute(
                        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity"
                        " WHERE %s = ANY(pg_blocking_pids(pid)))",
                        [pid],
                    )
                    if cursor.fetchone()[0]:
                        break
                    time.sleep(0.02)
        finally:
            watcher.close()
            other.commit()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_pair_changed_before_the_batch_locks_its_rows_is_re_read_under_them(committed_db):
    missing, changed, behind = make_pairs(3, level=2)
    delete_row(SpecializationProgress, missing, "PLAYER")
    set_progress_level(changed, "PLAYER", 3)  # licence 2 behind progress 3
    set_progress_level(behind, "PLAYER", 3)
    other = psycopg2.connect(**connection.get_connection_params())
    with other.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {PROGRESS} (student_id, specialization_id, current_level, total_xp,"
            " completed_sessions, completed_projects, theory_hours_completed,"
            " practice_hours_completed) VALUES (%s, 'PLAYER', 2, 0, 0, 0, 0, 0)",
            [missing.pk],
        )
        cursor.execute(
            f"UPDATE {PROGRESS} SET current_level = 5 WHERE student_id = %s", [changed.pk]
        )
        cursor.execute(
            f"UPDATE {LICENCE} SET current_level = 5, max_achieved_level = 5 WHERE user_id = %s",
            [changed.pk],
        )
    watcher = commit_once_waited_for(other)
    try:
        report = repair(options=RepairOptions(lock_timeout=10))
    finally:
        watcher.join()
        other.close()

    assert (report.repaired, report.skipped, report.skipped_locked) == (1, 2, 0)
    assert [(a.user_id, a.action) for a in report.actions] == [(behind.pk, "raise_license")]
    licence = UserLicense.objects.get(user=changed)
    assert (licence.current_level, licence.max_achieved_level) == (5, 5)
    assert not LicenseProgression.objects.filter(license=licence).exists()
    assert consistency.count_pairs().inconsistent == 0

"""Levels following a catalogue change, committed on PostgreSQL: the commit guard is
satisfied, and a pair another connection is changing is waited for, never overwritten."""

import threading
import time
from io import StringIO

import psycopg2
import pytest
from django.core.management import call_command
from django.db import connection

from licenses import consistency
from licenses.models import LicenseProgression, UserLicense
from specializations.models import SpecializationProgress
from tests import catalogue_shapes as shapes
from tests.conftest import requires_postgres
from tests.factories import make_pairs

pytestmark = [requires_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PROGRESS = SpecializationProgress._meta.db_table
LICENCE = UserLicense._meta.db_table
HISTORY = LicenseProgression._meta.db_table


def load(path) -> str:
    out = StringIO()
    call_command("load_catalogue", str(path), stdout=out)
    return out.getvalue()


def students_at(level, *, count, xp, sessions, theory, practice):
    users = make_pairs(count, specialization="LFA_COACH", level=level)
    SpecializationProgress.objects.filter(student__in=users).update(
        total_xp=xp,
        completed_sessions=sessions,
        theory_hours_completed=theory,
        practice_hours_completed=practice,
    )
    return users


def test_a_committed_move_satisfies_the_commit_guard(committed_db, tmp_path):
    load(shapes.write(tmp_path, "coach.json", shapes.LFA_COACH))
    users = students_at(2, count=5, xp=2500, sessions=20, theory=40, practice=60)
    eased = shapes.changed(shapes.LFA_COACH, level_3={"xp_required": 2500})
    output = load(shapes.write(tmp_path, "coach.json", eased))  # commits: the guard checks
    assert "5 students moved up (to level 3: 5)" in output
    assert set(UserLicense.objects.filter(user__in=users).values_list("current_level")) == {(3,)}
    assert consistency.count_pairs().inconsistent == 0


def test_a_pair_being_changed_is_waited_for_and_never_overwritten(committed_db, tmp_path):
    load(shapes.write(tmp_path, "coach.json", shapes.LFA_COACH))
    (racer,) = students_at(2, count=1, xp=2500, sessions=20, theory=40, practice=60)
    (bystander,) = students_at(2, count=1, xp=2500, sessions=20, theory=40, practice=60)
    licence = UserLicense.objects.get(user=racer)
    # Another connection does what update_progress does under the old catalogue: more
    # XP, level 2 -> 4, licence and history with it; it holds both rows, uncommitted.
    other = psycopg2.connect(**connection.get_connection_params())
    with other.cursor() as cursor:
        cursor.execute(
            f"UPDATE {PROGRESS} SET total_xp = 7000, completed_sessions = 30,"
            " theory_hours_completed = 45, practice_hours_completed = 65, current_level = 4"
            " WHERE student_id = %s",
            [racer.pk],
        )
        cursor.execute(
            f"UPDATE {LICENCE} SET current_level = 4, max_achieved_level = 4 WHERE id = %s",
            [licence.pk],
        )
        cursor.execute(
            f"INSERT INTO {HISTORY} (license_id, from_level, to_level, reason)"
            " VALUES (%s, 2, 4, 'Auto-sync from progress')",
            [licence.pk],
        )
    eased = shapes.changed(shapes.LFA_COACH, level_3={"xp_required": 2500})
    path = shapes.write(tmp_path, "coach.json", eased)
    outputs = []

    def run_load():
        try:
            outputs.append(load(path))
        finally:
            connection.close()

    loader = threading.Thread(target=run_load, daemon=True)
    loader.start()
    try:
        assert wait_for_a_lock_wait(), "the load never waited for the held rows"
        other.commit()
        loader.join(timeout=60)
    finally:
        other.rollback()
        other.close()
    assert not loader.is_alive()
    assert "1 students moved up (to level 3: 1)" in outputs[0]  # the bystander only
    assert SpecializationProgress.objects.get(student=racer).current_level == 4
    assert UserLicense.objects.get(user=racer).current_level == 4
    assert list(
        LicenseProgression.objects.filter(license__user=racer).values_list("from_level", "to_level")
    ) == [(2, 4)]
    assert SpecializationProgress.objects.get(student=bystander).current_level == 3
    assert consistency.count_pairs().inconsistent == 0


def wait_for_a_lock_wait(seconds: float = 30) -> bool:
    """Whether a backend of this database comes to wait on a lock within ``seconds``."""
    observer = psycopg2.connect(**connection.get_connection_params())
    observer.autocommit = True  # pg_stat_activity is read afresh outside a transaction
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with observer.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    return True
            time.sleep(0.05)
        return False
    finally:
        observer.close()

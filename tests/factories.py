"""The suite's test data: the shipped factories (monitoring/testing/factories.py, also
a host project's) and the ones only this project's tests need (raw SQL into Django's
own user table: a bad import at scale, a SQLite file another process reads).
"""

import sqlite3

from django.contrib.auth import get_user_model
from django.db import connection

from licenses.guard import unguarded
from licenses.models import UserLicense
from monitoring.testing.factories import (  # noqa: F401  (the suite imports them from here)
    delete_row,
    install_catalogue,
    licence,
    make_desynced_pairs,
    make_pairs,
    progress,
    recorded_run,
    set_license_level,
    set_progress_level,
    student,
)
from specializations.models import SpecializationProgress


def bulk_mismatched_pairs(n: int, *, prefix: str, specialization: str = "PLAYER") -> int:
    """``n`` new students whose progress (level 3) is above their licence (level 2), written
    with INSERT ... SELECT as a bad import would: thousands in a fraction of a second.

    PostgreSQL only (generate_series); the rows commit with the caller's transaction.
    """
    users = get_user_model()._meta.db_table
    progress_table = SpecializationProgress._meta.db_table
    licences = UserLicense._meta.db_table
    mine = f"SELECT id FROM {users} WHERE username LIKE %s"
    with unguarded(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {users} (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined)"
            " SELECT '!', false, %s || g, '', '', '', false, true, now()"
            " FROM generate_series(1, %s) AS g",
            [f"{prefix}-", n],
        )
        cursor.execute(
            f"INSERT INTO {progress_table} (student_id, specialization_id, current_level, total_xp,"
            " completed_sessions, completed_projects, theory_hours_completed,"
            f" practice_hours_completed) SELECT id, %s, 3, 0, 0, 0, 0, 0 FROM ({mine}) AS u",
            [specialization, f"{prefix}-%"],
        )
        cursor.execute(
            f"INSERT INTO {licences} (user_id, specialization_id, current_level,"
            f" max_achieved_level, is_active) SELECT id, %s, 2, 2, true FROM ({mine}) AS u",
            [specialization, f"{prefix}-%"],
        )
    return n


def write_sqlite_pairs(path, levels) -> None:
    """Replace a migrated SQLite file's pairs with PLAYER pairs of (progress level, licence
    level), written straight into the file as another process (cron's check_sync) reads it."""
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM licenses_userlicense")
        db.execute("DELETE FROM specializations_specializationprogress")
        db.execute("DELETE FROM auth_user")
        for i, (p, lic) in enumerate(levels, start=1):
            db.execute(
                "INSERT INTO auth_user (id, password, is_superuser, username, first_name,"
                " last_name, email, is_staff, is_active, date_joined)"
                " VALUES (?, '', 0, ?, '', '', '', 0, 1, '2026-01-01')",
                (i, f"u{i}"),
            )
            db.execute(
                "INSERT INTO specializations_specializationprogress (student_id,"
                " specialization_id, current_level, total_xp, completed_sessions,"
                " completed_projects, theory_hours_completed, practice_hours_completed)"
                " VALUES (?, 'PLAYER', ?, 0, 0, 0, 0, 0)",
                (i, p),
            )
            db.execute(
                "INSERT INTO licenses_userlicense (user_id, specialization_id, current_level,"
                " max_achieved_level, is_active) VALUES (?, 'PLAYER', ?, ?, 1)",
                (i, lic, lic),
            )

"""Test data: model-bakery recipes for the pair's rows, one ``make_pairs``, and desyncs
injected the way production gets them (queryset updates and raw deletes skip the hook).

The recipes give every constrained field an explicit, valid value (levels >= 1,
amounts >= 0, max_achieved_level >= current_level) so that bakery never invents
one; tests set the fields they are about.
"""

import sqlite3
from datetime import timedelta
from itertools import count

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from model_bakery.recipe import Recipe, seq

from licenses.guard import unguarded
from licenses.models import LicenseProgression, UserLicense
from monitoring.models import HealthCheckRun
from specializations.models import SpecializationProgress

student = Recipe(
    get_user_model(),
    username=seq("pair-student-"),
    email=seq("pair-student-", suffix="@example.test"),
    is_staff=False,
    is_superuser=False,
)
progress = Recipe(
    SpecializationProgress,
    specialization_id="PLAYER",
    current_level=1,
    total_xp=0,
    completed_sessions=0,
    completed_projects=0,
    theory_hours_completed=0,
    practice_hours_completed=0,
)
licence = Recipe(
    UserLicense,
    specialization_id="PLAYER",
    current_level=1,
    max_achieved_level=1,
    is_active=True,
)

_batches = count(1)


@transaction.atomic  # both rows of each pair commit together (the commit guard checks)
def make_pairs(
    n: int, *, specialization: str = "PLAYER", level: int = 1, history: bool = False
) -> list:
    """``n`` new students, each with a progress row and a licence at ``level`` (in sync).

    Written in bulk, so the auto-sync hook does not run; ``history`` adds the
    licence's issuance row, as the hook would have written it.
    """
    batch = next(_batches)
    users = student.make(
        _quantity=n,
        _bulk_create=True,
        username=seq(f"pair{batch}-"),
        email=seq(f"pair{batch}-", suffix="@example.test"),
    )
    rows = {"specialization_id": specialization, "current_level": level}
    progress.make(_quantity=n, _bulk_create=True, student=iter(users), **rows)
    licences = licence.make(
        _quantity=n, _bulk_create=True, user=iter(users), max_achieved_level=level, **rows
    )
    if history:
        LicenseProgression.objects.bulk_create(
            LicenseProgression(license=lic, from_level=None, to_level=level, reason="seeded")
            for lic in licences
        )
    return users


def set_progress_level(user, specialization: str, level: int) -> None:
    with unguarded():
        SpecializationProgress.objects.filter(
            student=user, specialization_id=specialization
        ).update(current_level=level)


def set_license_level(users, specialization: str, level: int) -> None:
    """Move the licences of ``users`` (one user or several) to ``level``, behind the hook."""
    users = users if isinstance(users, list | tuple) else [users]
    with unguarded():
        UserLicense.objects.filter(user__in=users, specialization_id=specialization).update(
            current_level=level, max_achieved_level=level
        )


def delete_row(model, user, specialization: str) -> None:
    """Remove a row with raw SQL, as a bad import or restore would."""
    user_column = "student_id" if model is SpecializationProgress else "user_id"
    with unguarded(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {model._meta.db_table} WHERE {user_column} = %s"
            " AND specialization_id = %s",
            [user.pk, specialization],
        )


def bulk_mismatched_pairs(n: int, *, prefix: str, specialization: str = "PLAYER") -> int:
    """``n`` new students whose progress (level 3) is above their licence (level 2), written
    with INSERT ... SELECT as a bad import would: thousands in a fraction of a second.

    PostgreSQL only (generate_series); the rows commit with the caller's transaction.
    """
    users = get_user_model()._meta.db_table
    progress, licences = SpecializationProgress._meta.db_table, UserLicense._meta.db_table
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
            f"INSERT INTO {progress} (student_id, specialization_id, current_level, total_xp,"
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


def recorded_run(
    *, total: int, inconsistent: int, rate: str, status: str, age_seconds: float = 0, **fields
) -> HealthCheckRun:
    """A finished check in the history, as check_sync records it; its desyncs are level
    mismatches, and it is ``age_seconds`` old."""
    run = HealthCheckRun.objects.create(
        duration_ms=fields.pop("duration_ms", 10),
        total_checked=total,
        consistent=total - inconsistent,
        inconsistent=inconsistent,
        level_mismatch=inconsistent,
        consistency_rate=rate,
        status=status,
        warn_below=99,
        critical_below=95,
        **fields,
    )
    if age_seconds:
        HealthCheckRun.objects.filter(pk=run.pk).update(
            checked_at=timezone.now() - timedelta(seconds=age_seconds)
        )
        run.refresh_from_db()
    return run

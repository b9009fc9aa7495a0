"""Test data: model-bakery recipes for the pair's rows, one ``make_pairs``, and desyncs
injected the way production gets them (queryset updates and raw deletes skip the hook
and, on PostgreSQL, say ``unguarded()`` to the commit guard).

The recipes give every constrained field an explicit, valid value (levels >= 1,
amounts >= 0, max_achieved_level >= current_level) so that bakery never invents
one; tests set the fields they are about.
"""

from datetime import timedelta
from itertools import count

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from model_bakery.recipe import Recipe, seq

from common.users import user_fields
from licenses.guard import unguarded
from licenses.models import LicenseProgression, UserLicense
from monitoring.models import HealthCheckRun
from specializations.default_catalogue import install_default_catalogue
from specializations.models import SpecializationProgress


def user_names(prefix: str) -> dict:
    """Unique values for the user model's name fields (``common.users.user_fields``):
    ``<prefix><n>``, an address in the email field."""
    email = get_user_model().get_email_field_name()
    return {
        name: seq(prefix, suffix="@example.test") if name == email else seq(prefix)
        for name in user_fields()
    }


student = Recipe(
    get_user_model(),
    **user_names("pair-student-"),
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


def install_catalogue() -> None:
    """Create the default level catalogue (a transactional test's flush removes it)."""
    install_default_catalogue()


@transaction.atomic  # both rows of each pair commit together (the commit guard checks)
def make_pairs(
    n: int, *, specialization: str = "PLAYER", level: int = 1, history: bool = False
) -> list:
    """``n`` new students, each with a progress row and a licence at ``level`` (in sync).

    Written in bulk, so the auto-sync hook does not run; ``history`` adds the
    licence's issuance row, as the hook would have written it.
    """
    if n == 0:
        return []
    batch = next(_batches)
    users = student.make(
        _quantity=n,
        _bulk_create=True,
        **user_names(f"pair{batch}-"),
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


def make_desynced_pairs(n: int, *, specialization: str = "PLAYER", level: int = 2) -> list:
    """``n`` new students whose progress is one level above their licence (at ``level``):
    level mismatches, as a bulk update that skipped the hook leaves them."""
    users = make_pairs(n, specialization=specialization, level=level)
    with unguarded():
        SpecializationProgress.objects.filter(
            student__in=users, specialization_id=specialization
        ).update(current_level=level + 1)
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

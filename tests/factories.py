"""Fast data for monitor tests: pairs written with bulk_create (no hook), desyncs injected
the way they happen in production (queryset updates and raw deletes bypass the hook)."""

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from licenses.guard import unguarded
from licenses.models import UserLicense
from specializations.models import SpecializationProgress

_batch = iter(range(1, 1_000_000))


@transaction.atomic  # both rows of each pair commit together (the commit guard checks)
def make_pairs(n: int, *, specialization: str = "PLAYER", level: int = 1) -> list:
    """``n`` users, each with a progress row and a licence at ``level`` (in sync)."""
    prefix = f"pair{next(_batch)}-"
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"{prefix}{i}") for i in range(n)])
    SpecializationProgress.objects.bulk_create(
        [
            SpecializationProgress(student=u, specialization_id=specialization, current_level=level)
            for u in users
        ]
    )
    UserLicense.objects.bulk_create(
        [
            UserLicense(
                user=u,
                specialization_id=specialization,
                current_level=level,
                max_achieved_level=level,
            )
            for u in users
        ]
    )
    return users


def set_progress_level(user, specialization: str, level: int) -> None:
    with unguarded():
        SpecializationProgress.objects.filter(
            student=user, specialization_id=specialization
        ).update(current_level=level)


def set_license_level(user, specialization: str, level: int) -> None:
    with unguarded():
        UserLicense.objects.filter(user=user, specialization_id=specialization).update(
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

"""The invariants live in the database: each constraint refuses a violating row."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from licenses.models import LicenseProgression, UserLicense
from specializations.models import Level, Specialization, SpecializationProgress

pytestmark = pytest.mark.django_db


@pytest.fixture
def progress(student):
    return SpecializationProgress.objects.create(student=student, specialization_id="PLAYER")


def refuses(queryset, **values):
    """A queryset update (no Python validation, no signals) must hit a database constraint."""
    with pytest.raises(IntegrityError), transaction.atomic():
        queryset.update(**values)


@pytest.mark.parametrize(
    "field, value",
    [
        ("current_level", 0),
        ("total_xp", -1),
        ("completed_sessions", -1),
        ("completed_projects", -1),
        ("theory_hours_completed", -1),
        ("practice_hours_completed", -1),
    ],
)
def test_progress_check_constraints_refuse_bad_values(progress, field, value):
    refuses(SpecializationProgress.objects.filter(pk=progress.pk), **{field: value})


def test_one_progress_row_per_student_and_specialization(progress):
    with pytest.raises(IntegrityError), transaction.atomic():
        SpecializationProgress.objects.bulk_create(
            [SpecializationProgress(student=progress.student, specialization_id="PLAYER")]
        )


def test_one_licence_per_user_and_specialization(progress):
    with pytest.raises(IntegrityError), transaction.atomic():
        UserLicense.objects.bulk_create(
            [UserLicense(user=progress.student, specialization_id="PLAYER")]
        )


def test_licence_level_at_least_one(progress):
    refuses(UserLicense.objects.filter(user=progress.student), current_level=0)


def test_licence_max_achieved_level_never_below_current(progress):
    licence = UserLicense.objects.get(user=progress.student)
    refuses(UserLicense.objects.filter(pk=licence.pk), current_level=3, max_achieved_level=2)


def test_started_at_is_filled_by_the_database_when_an_insert_omits_it(student):
    table = UserLicense._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, specialization_id, current_level,"
            " max_achieved_level, is_active) VALUES (%s, 'COACH', 1, 1, %s)",
            [student.pk, True],
        )
    assert UserLicense.objects.get(user=student, specialization_id="COACH").started_at is not None


def test_started_at_cannot_be_null(progress):
    refuses(UserLicense.objects.filter(user=progress.student), started_at=None)


def test_progression_levels_at_least_one(progress):
    entry = LicenseProgression.objects.filter(license__user=progress.student)
    refuses(entry, to_level=0)
    refuses(entry, from_level=0)


def test_deleting_a_licence_with_history_is_refused(progress):
    licence = UserLicense.objects.get(user=progress.student)
    assert licence.progressions.exists()
    with pytest.raises(ProtectedError):
        licence.delete()
    assert LicenseProgression.objects.filter(license=licence).exists()


def test_deleting_a_student_with_licence_history_is_refused(progress):
    # Cascading to the licence would erase its audit history: PROTECT stops it.
    with pytest.raises(ProtectedError):
        progress.student.delete()


def test_deleting_the_staff_author_keeps_the_audit_row(progress, make_user):
    author = make_user(is_staff=True)
    licence = UserLicense.objects.get(user=progress.student)
    entry = LicenseProgression.objects.create(
        license=licence, from_level=1, to_level=1, advanced_by=author, reason="test"
    )
    author.delete()
    entry.refresh_from_db()
    assert entry.advanced_by is None


def test_catalogue_rows_are_unique_per_specialization_and_number():
    with pytest.raises(IntegrityError), transaction.atomic():
        Level.objects.create(
            specialization_id="PLAYER",
            number=1,
            name="dup",
            required_xp=0,
            required_sessions=0,
            license_title="dup",
        )


def test_specialization_in_use_cannot_be_deleted(progress):
    with pytest.raises(ProtectedError):
        Specialization.objects.get(pk="PLAYER").delete()

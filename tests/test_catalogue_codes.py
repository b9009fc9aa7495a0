"""Specialization codes are data: any code of the format, 50 characters, every row kept
across the migration that made them so."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from licenses import guard
from licenses.models import LicenseProgression, UserLicense
from monitoring import db_views
from monitoring.models import DesyncCase
from specializations.models import Level, Specialization, SpecializationProgress
from specializations.services import enroll, update_progress
from tests.factories import make_pairs, set_license_level

LONG_CODE = "A" + "B_9" * 16 + "Z"  # 50 characters


def new_specialization(code: str) -> Specialization:
    spec = Specialization.objects.create(code=code, name="Long", max_level=2)
    Level.objects.bulk_create(
        Level(
            specialization=spec,
            number=n,
            name=f"L{n}",
            required_xp=xp,
            required_sessions=0,
            license_title=f"L{n}",
        )
        for n, xp in ((1, 0), (2, 100))
    )
    return spec


@pytest.mark.django_db
def test_a_fifty_character_code_reaches_progress_licences_and_history(student):
    assert len(LONG_CODE) == 50
    new_specialization(LONG_CODE)
    update_progress(student, LONG_CODE, xp_gained=150)
    licence = UserLicense.objects.get(user=student, specialization_id=LONG_CODE)
    assert licence.current_level == 2
    assert licence.progressions.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["lfa_coach", "LFA-COACH", "9LIVES", "LFA COACH", "A" * 51, ""])
def test_the_validator_refuses_a_code_outside_the_format(code):
    spec = Specialization(code=code, name="x", max_level=1)
    with pytest.raises(ValidationError) as caught:
        spec.full_clean()
    assert "code" in caught.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["lfa_coach", "LFA-COACH", "9LIVES", "COACH\n"])
def test_the_database_refuses_a_code_outside_the_format(code):
    with pytest.raises(IntegrityError), transaction.atomic():
        Specialization.objects.create(code=code, name="x", max_level=1)


@pytest.mark.django_db
def test_the_admin_lists_accept_a_case_key_with_digits(client, staff):
    new_specialization("U19_CUP")
    (user,) = make_pairs(1, specialization="U19_CUP")
    set_license_level(user, "U19_CUP", 2)
    client.force_login(staff)
    response = client.get(f"/admin/monitoring/desynccase/{user.pk}:U19_CUP/change/")
    assert response.status_code == 200


def snapshot() -> dict:
    return {
        model.__name__: list(model.objects.order_by("pk").values_list("pk", *fields))
        for model, fields in (
            (Specialization, ["code", "name", "max_level", "is_active"]),
            (Level, ["specialization_id", "number", "required_xp", "license_title"]),
            (SpecializationProgress, ["student_id", "specialization_id", "current_level"]),
            (UserLicense, ["user_id", "specialization_id", "current_level"]),
            (LicenseProgression, ["license_id", "from_level", "to_level", "reason"]),
        )
    }


def column_lengths() -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, character_maximum_length"
            " FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND column_name IN ('code', 'specialization_id')"
            " AND table_name IN ('specializations_specialization', 'specializations_level',"
            " 'specializations_specializationprogress', 'licenses_userlicense')"
        )
        return {(table, column): length for table, column, length in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_every_row_survives_the_migration_both_ways(student):
    """From the current schema (with the Desync cases views and, on PostgreSQL, the commit
    guard's triggers in place, as migrate leaves them) back to before 0004 and forward again."""
    enroll(student, "COACH")
    update_progress(student, "PLAYER", xp_gained=30_000, sessions_completed=12)
    make_pairs(3, specialization="INTERNSHIP", level=2, history=True)
    before = snapshot()
    views = {view.name for view in connection.introspection.get_table_list(connection.cursor())}
    assert {db_views.PAIRS_VIEW, db_views.CASES_VIEW} <= views
    executor = MigrationExecutor(connection)
    executor.migrate([("specializations", "0003_progress_ledger")])
    if connection.vendor == "postgresql":
        assert set(column_lengths().values()) == {20}
    assert snapshot() == before
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert snapshot() == before
    if connection.vendor == "postgresql":
        assert set(column_lengths().values()) == {50}
        assert guard.installed_triggers() == guard.expected_triggers()
    # The views were put back as they were, and still read the pairs.
    assert DesyncCase.objects.count() == 0
    db_views.create_views()

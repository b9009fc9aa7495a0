"""import_source when the source or the product changed in ways a constraint would refuse.

Each case was a database traceback halfway through the write; each is now a
problem naming the source's table, row id and field before anything is written
(``--skip-invalid`` leaves the row and its dependants out), or, where following
the source is right (two users swapping emails), a change in the report.
"""

import uuid
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management import CommandError, call_command
from django.db import models
from django.test.utils import isolate_apps

from imports import source_users
from imports.exceptions import UnsupportedUserModel
from imports.models import ImportedRow
from imports.source_import import import_source
from licenses.guard import unguarded
from licenses.models import UserLicense
from specializations.models import SpecializationProgress
from specializations.services import update_progress
from tests.test_import_source import imported_user, snapshot

User = get_user_model()


def problems(report) -> list[str]:
    return [str(problem) for problem in report.problems]


def test_a_user_deleted_in_the_product_since_is_named_and_nothing_is_written(
    source, academy_catalogue
):
    import_source(source.url)
    cecil = imported_user(6).pk
    # With its progress row (a licence's history would protect a user from deletion).
    User.objects.filter(pk=cecil).delete()
    source.licence(6, 6, "GANCUJU_PLAYER")  # new at the source since
    before = snapshot()
    report = import_source(source.url)
    assert problems(report) == [
        f"users id=6 id: was imported as the product's user id={cecil},"
        " which has since been deleted"
    ]
    assert not report.written and snapshot() == before

    report = import_source(source.url, skip_invalid=True)
    assert report.left_out == {
        "users": 1,
        "specialization_progress": 1,
        "user_licenses": 1,
        "license_progressions": 0,
    }
    assert report.written and not User.objects.filter(email="cecil@academy.test").exists()


def test_a_licence_deleted_in_the_product_since_is_named(source, academy_catalogue):
    import_source(source.url)
    licence = UserLicense.objects.get(user=imported_user(4), specialization="LFA_COACH").pk
    with unguarded():
        UserLicense.objects.filter(pk=licence).delete()
    source.history(6, 2, 3, 4, reason="Új vizsga")  # a new row for the deleted licence
    report = import_source(source.url)
    assert problems(report) == [
        f"user_licenses id=2 id: was imported as the product's licence id={licence},"
        " which has since been deleted"
    ]
    assert not report.written


def test_two_users_swapping_emails_at_the_source_follow_it(source, academy_catalogue):
    import_source(source.url)
    anna, bela = imported_user(4), imported_user(5)
    source.execute(
        "UPDATE users SET email = CASE id WHEN 4 THEN 'bela@academy.test'"
        " ELSE 'anna@academy.test' END WHERE id IN (4, 5)"
    )
    report = import_source(source.url)
    assert report.changed["users"] == 2 and not report.problems
    anna.refresh_from_db()
    bela.refresh_from_db()
    assert (anna.username, anna.email) == ("bela@academy.test", "bela@academy.test")
    assert (bela.username, bela.email) == ("anna@academy.test", "anna@academy.test")


def test_an_email_taken_from_a_user_who_changed_it_follows_the_source(source, academy_catalogue):
    import_source(source.url)
    source.execute("UPDATE users SET email = 'feri.toth@academy.test' WHERE id = 9")
    source.execute("UPDATE users SET email = 'feri@academy.test' WHERE id = 6")
    report = import_source(source.url)
    assert report.changed["users"] == 2 and not report.problems
    assert imported_user(6).username == "feri@academy.test"
    assert imported_user(9).username == "feri.toth@academy.test"


def test_an_email_of_a_user_gone_from_the_source_is_named(source, academy_catalogue):
    import_source(source.url)
    feri = imported_user(9)
    source.execute("DELETE FROM users WHERE id = 9")
    source.execute("UPDATE users SET email = 'feri@academy.test' WHERE id = 6")
    before = snapshot()
    report = import_source(source.url)
    assert problems(report) == [
        f"users id=6 email: 'feri@academy.test' collides with the product's user id={feri.pk},"
        " imported from users id=9, which no longer has that email at the source"
    ]
    assert snapshot() == before


@pytest.mark.parametrize("rerun", [False, True], ids=["first-import", "rerun"])
def test_one_email_twice_at_the_source_in_any_case_is_named(source, academy_catalogue, rerun):
    if rerun:
        import_source(source.url)
    source.execute("UPDATE users SET email = 'ANNA@academy.test' WHERE id = 5")
    report = import_source(source.url)
    assert problems(report) == [
        "users id=5 email: 'ANNA@academy.test' is also the email of users id=4"
        " (emails compare without case)"
    ]
    assert not report.written


def test_a_null_email_is_named(source, academy_catalogue):
    source.execute("ALTER TABLE users ALTER COLUMN email DROP NOT NULL")
    try:
        source.execute("UPDATE users SET email = NULL WHERE id = 9")
        assert problems(import_source(source.url)) == ["users id=9 email: is empty"]
    finally:
        source.execute("DELETE FROM users WHERE id = 9")
        source.execute("ALTER TABLE users ALTER COLUMN email SET NOT NULL")


def test_a_value_that_cannot_be_a_specialization_code_is_a_row_problem(source, academy_catalogue):
    source.specialization("lfa coach")
    source.progress(6, 6, "lfa coach")
    source.execute("UPDATE user_licenses SET specialization_type = 'Internship' WHERE id = 5")
    report = import_source(source.url)
    fmt = "an upper-case letter, then up to 49 upper-case letters, digits or underscores"
    assert report.unknown_specializations == []
    assert problems(report) == [
        f"specialization_progress id=6 specialization_id: 'lfa coach' is not a code ({fmt})",
        f"user_licenses id=5 specialization_type: 'Internship' is not a code ({fmt})",
    ]
    report = import_source(source.url, skip_invalid=True)
    assert report.written and report.left_out["user_licenses"] == 1


def test_a_pair_twice_at_the_source_is_named(source, academy_catalogue):
    source.progress(6, 4, "GANCUJU_PLAYER", level=2, xp=1600)
    source.execute("ALTER TABLE user_licenses DROP CONSTRAINT uq_user_license_spec")
    try:
        source.licence(6, 5, "GANCUJU_PLAYER", level=3)
        assert problems(import_source(source.url)) == [
            "specialization_progress id=6 specialization_id: GANCUJU_PLAYER of users id=4 is"
            " also in specialization_progress id=1",
            "user_licenses id=6 specialization_type: GANCUJU_PLAYER of users id=5 is also in"
            " user_licenses id=3",
        ]
    finally:
        source.execute("DELETE FROM user_licenses WHERE id = 6")
        source.execute(
            "ALTER TABLE user_licenses ADD CONSTRAINT uq_user_license_spec"
            " UNIQUE (user_id, specialization_type)"
        )


def test_a_row_given_to_another_student_at_the_source_is_named(source, academy_catalogue):
    import_source(source.url)
    row = SpecializationProgress.objects.get(student=imported_user(5))
    source.execute("UPDATE specialization_progress SET student_id = 9 WHERE id = 3")
    report = import_source(source.url)
    assert problems(report) == [
        f"specialization_progress id=3 student_id: was imported as the product's progress row"
        f" id={row.pk} (user id={row.student_id}, GANCUJU_PLAYER): the import does not move a"
        " row to another user or specialization"
    ]


def test_a_change_the_products_totals_cannot_take_is_named(source, academy_catalogue):
    import_source(source.url)
    bela = imported_user(5)
    update_progress(bela, "GANCUJU_PLAYER", xp_gained=-3000, idempotency_key="fix", source="api")
    row = SpecializationProgress.objects.get(student=bela)
    source.execute("UPDATE specialization_progress SET total_xp = 100 WHERE id = 3")
    before = snapshot()
    report = import_source(source.url)
    assert problems(report) == [
        f"specialization_progress id=3 total_xp: its change since the last import would take"
        f" the product's progress row id={row.pk} to -2900, below 0"
    ]
    assert snapshot() == before


def test_the_command_lists_the_problems_and_exits_1(source, academy_catalogue):
    import_source(source.url)
    imported_user(6).delete()
    out = StringIO()
    with pytest.raises(CommandError, match="1 invalid source rows; nothing was written"):
        call_command("import_source", source.url, stdout=out)
    assert "Invalid rows:" in out.getvalue()
    assert ImportedRow.objects.filter(table="users").count() == 9  # the last run's, unchanged


@isolate_apps("imports")
def unsupported_models():
    class StafflessMember(AbstractBaseUser):
        class Meta:
            app_label = "imports"

        email = models.EmailField(unique=True)
        is_active = models.BooleanField(default=True)
        USERNAME_FIELD = "email"

    class UuidMember(AbstractBaseUser):
        class Meta:
            app_label = "imports"

        id = models.UUIDField(primary_key=True, default=uuid.uuid4)
        email = models.EmailField(unique=True)
        is_active = models.BooleanField(default=True)
        is_staff = models.BooleanField(default=False)
        USERNAME_FIELD = "email"

    class BadgedMember(AbstractBaseUser):
        class Meta:
            app_label = "imports"

        email = models.EmailField(unique=True)
        is_active = models.BooleanField(default=True)
        is_staff = models.BooleanField(default=False)
        age = models.IntegerField()
        USERNAME_FIELD = "email"

    return {
        "staffless": (StafflessMember, "is_staff", "is missing"),
        "uuid": (UuidMember, "id", "is a UUIDField: the import needs an automatic integer key"),
        "required": (BadgedMember, "age", "is required and the import has no value for it"),
    }


@pytest.mark.parametrize("case", ["staffless", "uuid", "required"])
def test_a_user_model_the_import_cannot_fill_is_refused_before_reading(db, monkeypatch, case):
    model, field, reason = unsupported_models()[case]
    monkeypatch.setattr(source_users, "get_user_model", lambda: model)
    with pytest.raises(UnsupportedUserModel) as refused:
        import_source("postgresql://u@127.0.0.1:1/unreachable")  # never opened
    assert refused.value.field == field
    assert str(refused.value).startswith(
        f"the user model imports.{model.__name__} cannot take the import: its field {field}"
        f" {reason}"
    )
    assert str(refused.value).endswith("; nothing was written")

"""The commit guard on PostgreSQL: no committed transaction leaves a touched pair out of sync.

Real commits throughout (``committed_db``): the guard is a deferred trigger and
fires at COMMIT, which a test's rolled-back transaction never reaches.
"""

import re
from io import StringIO

import psycopg2
import pytest
from django.contrib.admin.models import LogEntry
from django.core import checks
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.db import IntegrityError, connection, transaction

from licenses import guard
from licenses.consistency import count_pairs
from licenses.models import LicenseProgression, UserLicense
from licenses.services import update_level_atomic, validate_consistency
from monitoring.services import repair
from specializations.models import SpecializationProgress
from specializations.services import enroll, update_progress
from tests.factories import make_pairs

on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's guard")
pytestmark = pytest.mark.django_db(transaction=True)
PROGRESS, LICENSE = SpecializationProgress._meta.db_table, UserLicense._meta.db_table


@pytest.fixture
def pair(committed_db):
    """One user with a PLAYER pair at level 2, committed."""
    return make_pairs(1, level=2)[0]


def message(user_id: int, progress: str, licence: str, specialization: str = "PLAYER") -> str:
    return (
        f"sync guard: the pair (user {user_id}, {specialization}) would be left out of sync: "
        f"progress level {progress}, licence level {licence}"
    )


def refused(*args, **kwargs) -> str:
    """The guard's message as a pattern for pytest.raises(match=...)."""
    return re.escape(message(*args, **kwargs))


def levels(user) -> tuple:
    state = validate_consistency(user, "PLAYER")
    return state.kind, state.progress_level, state.license_level


@on_postgres
class TestRefusedAtCommit:
    def test_a_queryset_update_of_one_side(self, pair):
        pattern = refused(pair.pk, "3", "2")
        with pytest.raises(IntegrityError, match=pattern) as caught, transaction.atomic():
            SpecializationProgress.objects.filter(student=pair).update(current_level=3)
        assert guard.is_guard_error(caught.value)
        assert levels(pair) == ("ok", 2, 2)

    def test_raw_sql(self, pair):
        with (
            pytest.raises(IntegrityError, match=refused(pair.pk, "2", "5")),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(
                f"UPDATE {LICENSE} SET current_level = 5, max_achieved_level = 5"
                " WHERE user_id = %s",
                [pair.pk],
            )
        assert levels(pair) == ("ok", 2, 2)

    def test_deleting_one_side(self, pair):
        with pytest.raises(IntegrityError, match=refused(pair.pk, "none", "2")):
            SpecializationProgress.objects.filter(student=pair).delete()
        with (
            pytest.raises(IntegrityError, match=refused(pair.pk, "2", "none")),
            transaction.atomic(),
        ):
            LicenseProgression.objects.filter(license__user=pair).delete()
            UserLicense.objects.filter(user=pair).delete()
        assert levels(pair) == ("ok", 2, 2)

    def test_bulk_create_of_one_side(self, pair):
        with pytest.raises(IntegrityError, match=refused(pair.pk, "1", "none", "COACH")):
            SpecializationProgress.objects.bulk_create(
                [SpecializationProgress(student=pair, specialization_id="COACH")]
            )  # autocommit: the insert is its own transaction
        assert not SpecializationProgress.objects.filter(specialization_id="COACH").exists()

    def test_moving_a_row_to_another_pair_checks_both(self, pair):
        with pytest.raises(IntegrityError, match="sync guard: the pair"):
            UserLicense.objects.filter(user=pair).update(specialization_id="COACH")
        assert levels(pair) == ("ok", 2, 2)

    def test_from_psql_as_an_operator_would_type_it(self, pair):
        raw = psycopg2.connect(**connection.get_connection_params())
        try:
            with raw.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {PROGRESS} SET current_level = 4 WHERE student_id = %s", [pair.pk]
                )
            with pytest.raises(psycopg2.IntegrityError, match=refused(pair.pk, "4", "2")):
                raw.commit()
        finally:
            raw.close()
        assert levels(pair) == ("ok", 2, 2)


@on_postgres
class TestLetThrough:
    def test_the_services_and_the_hook_commit_in_sync(self, committed_db, make_user):
        student, staff = make_user(), make_user(is_staff=True)
        enroll(student, "PLAYER")
        update_progress(student, "PLAYER", xp_gained=5_000, sessions_completed=5)
        update_level_atomic(student, "COACH", new_level=4, advanced_by=staff, reason="transfer")
        SpecializationProgress.objects.filter(student=student).update(total_xp=1)  # no level
        assert validate_consistency(student, "COACH").kind == "ok"
        with transaction.atomic():  # both rows of a pair go together
            LicenseProgression.objects.filter(license__user=student).delete()
            UserLicense.objects.filter(user=student).delete()
            SpecializationProgress.objects.filter(student=student).delete()
        assert not UserLicense.objects.exists()

    def test_a_deliberate_desync_is_let_through_by_unguarded_only(self, pair):
        with guard.unguarded():
            SpecializationProgress.objects.filter(student=pair).update(current_level=5)
        assert levels(pair) == ("level_mismatch", 5, 2)
        # The bypass ended with its transaction: the next one is guarded again.
        with pytest.raises(IntegrityError, match=refused(pair.pk, "6", "2")):
            SpecializationProgress.objects.filter(student=pair).update(current_level=6)
        # Repair commits in sync under the guard.
        assert repair().repaired == 1
        assert levels(pair) == ("ok", 5, 5)

    def test_psql_set_config_lets_one_transaction_through(self, pair):
        raw = psycopg2.connect(**connection.get_connection_params())
        try:
            with raw.cursor() as cursor:
                cursor.execute("SELECT set_config('academy.sync_guard', 'off', true)")
                cursor.execute(f"DELETE FROM {PROGRESS} WHERE student_id = %s", [pair.pk])
            raw.commit()
            with raw.cursor() as cursor:  # a new transaction: guarded again
                cursor.execute(
                    f"UPDATE {LICENSE} SET current_level = 7, max_achieved_level = 7"
                    " WHERE user_id = %s",
                    [pair.pk],
                )
            with pytest.raises(psycopg2.IntegrityError):
                raw.commit()
        finally:
            raw.close()
        assert count_pairs().by_kind["missing_progress"] == 1

    def test_a_thousand_pair_repair_commits_under_the_guard(self, committed_db):
        users = make_pairs(1000, level=1)
        with guard.unguarded():
            SpecializationProgress.objects.filter(student__in=users[:600]).update(current_level=2)
            LicenseProgression.objects.filter(license__user__in=users[600:]).delete()
            UserLicense.objects.filter(user__in=users[600:]).delete()
        assert repair().repaired == 1000
        assert count_pairs().inconsistent == 0


@on_postgres
class TestSettingAndSystemCheck:
    def test_off_drops_the_triggers_and_e002_says_when_they_are_missing(self, pair, settings):
        assert guard.installed_triggers() == guard.expected_triggers()
        assert "licenses.E002" not in [
            issue.id for issue in checks.run_checks(databases=["default"])
        ]
        try:
            guard.sync_triggers(enabled=False)
            assert guard.installed_triggers() == set()
            SpecializationProgress.objects.filter(student=pair).update(current_level=3)
            assert levels(pair) == ("level_mismatch", 3, 2)
            errors = [
                issue
                for issue in checks.run_checks(databases=["default"])
                if issue.id == "licenses.E002"
            ]
            assert len(errors) == 1 and "missing" in errors[0].msg
            settings.SYNC_DB_GUARD = False
            assert "licenses.E002" not in [
                issue.id for issue in checks.run_checks(databases=["default"])
            ]
        finally:
            guard.sync_triggers(enabled=True)
        assert guard.installed_triggers() == guard.expected_triggers()


@on_postgres
def test_sync_guard_shows_drops_and_reinstalls_while_e002_stops_other_commands(committed_db):
    def status(*args) -> str:
        out = StringIO()
        call_command("sync_guard", *args, stdout=out)
        return out.getvalue().strip()

    assert status() == "commit guard on 'default': installed (SYNC_DB_GUARD is on)"
    try:
        assert status("--drop") == "commit guard on 'default': not installed (SYNC_DB_GUARD is on)"
        with pytest.raises(SystemCheckError, match="licenses.E002"):
            call_command("migrate", verbosity=0, skip_checks=False)  # the check stops it
        assert status("--install") == "commit guard on 'default': installed (SYNC_DB_GUARD is on)"
    finally:
        guard.sync_triggers(enabled=True)
    call_command("migrate", verbosity=0, skip_checks=False)  # and puts them back itself
    assert guard.installed_triggers() == guard.expected_triggers()


@on_postgres
class TestAdminMessage:
    def test_deleting_a_progress_row_alone_is_a_message_not_a_500(self, staff_client, pair):
        progress = SpecializationProgress.objects.get(student=pair)
        url = f"/admin/specializations/specializationprogress/{progress.pk}/delete/"
        response = staff_client.post(url, {"post": "yes"}, follow=True)
        assert response.status_code == 200
        (shown,) = [str(m) for m in response.context["messages"]]
        assert shown == (
            f"Nothing was deleted: {message(pair.pk, 'none', '2')}. "
            "Delete the student to remove both rows."
        )
        assert SpecializationProgress.objects.filter(pk=progress.pk).exists()
        assert not LogEntry.objects.exists()

    def test_delete_selected_licences_is_refused_whole(self, staff_client, committed_db):
        users = make_pairs(3, level=2)
        ids = [str(pk) for pk in UserLicense.objects.values_list("pk", flat=True)]
        response = staff_client.post(
            "/admin/licenses/userlicense/",
            {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
            follow=True,
        )
        assert response.status_code == 200
        (shown,) = [str(m) for m in response.context["messages"]]
        assert shown.startswith("Nothing was deleted: sync guard: the pair (user ")
        assert UserLicense.objects.count() == 3 and not LogEntry.objects.exists()
        assert all(levels(user) == ("ok", 2, 2) for user in users)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite has no guard")
def test_sqlite_is_unguarded_and_check_sync_is_the_net(pair):
    assert guard.sync_triggers() is False
    with pytest.raises(CommandError, match="--database='default' is sqlite: the guard needs"):
        call_command("sync_guard", "--install")
    SpecializationProgress.objects.filter(student=pair).update(current_level=3)
    assert levels(pair) == ("level_mismatch", 3, 2)
    assert "licenses.E002" not in [issue.id for issue in checks.run_checks(databases=["default"])]

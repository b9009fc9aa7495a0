"""import_source as real processes: killed with ``kill -9`` while it writes, then run
again; and two at once on one product database."""

import os
import signal
import subprocess

import psycopg2
import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction

from imports.models import ImportedRow
from licenses import consistency
from licenses.models import LicenseProgression, UserLicense
from specializations.models import ExternalId, ProgressEvent, SpecializationProgress
from tests.conftest import requires_postgres
from tests.import_processes import database_url, wait_for
from tests.import_processes import import_process as _import_process

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

APP_NAME = "import-source-fault-test"


def import_process(target) -> subprocess.Popen:
    return _import_process("import_source", str(target), app_name=APP_NAME)


User = get_user_model()


def state() -> dict:
    """What the import wrote, by natural keys (ids and the run's own times left out)."""
    name = dict(User.objects.values_list("id", "username"))
    return {
        "users": sorted(
            User.objects.values_list(
                "username", "first_name", "last_name", "email", "is_staff", "is_active"
            )
        ),
        "passwords": {user.has_usable_password() for user in User.objects.all()},
        "progress": sorted(
            (name[row[0]], *row[1:])
            for row in SpecializationProgress.objects.values_list(
                "student", "specialization", "current_level", "total_xp", "completed_sessions"
            )
        ),
        "licences": sorted(
            (name[row[0]], *row[1:])
            for row in UserLicense.objects.values_list(
                "user", "specialization", "current_level", "max_achieved_level", "started_at"
            )
        ),
        "history": sorted(  # repr: a from_level may be None
            (
                (name[row[0]], row[1], row[2], row[3], name.get(row[4]), row[5], row[6])
                for row in LicenseProgression.objects.values_list(
                    "license__user",
                    "license__specialization",
                    "from_level",
                    "to_level",
                    "advanced_by",
                    "reason",
                    "created_at",
                )
            ),
            key=repr,
        ),
        "events": sorted(
            ProgressEvent.objects.values_list(
                "source", "idempotency_key", "xp_gained", "level_before", "level_after"
            )
        ),
        "external_ids": sorted(
            (source, external, name[user])
            for source, external, user in ExternalId.objects.values_list(
                "source", "external_id", "user"
            )
        ),
        "mapped": sorted(ImportedRow.objects.values_list("table", "source_id", "digest")),
    }


def test_killed_while_writing_then_rerun_ends_as_one_uninterrupted_run(source, academy_catalogue):
    code = import_process(source.url).wait(timeout=120)
    assert code == 0
    uninterrupted = state()
    with connection.cursor() as cursor:  # back to before the import (TRUNCATE: no guard)
        cursor.execute(
            "TRUNCATE imports_importedrow, specializations_progressevent,"
            " specializations_externalid, licenses_licenseprogression, licenses_userlicense,"
            " specializations_specializationprogress, auth_user CASCADE"
        )

    # The history table, written last, is locked: the import waits there, after it wrote
    # users, progress, events and licences in its transaction.
    blocker = psycopg2.connect(database_url())
    blocker.cursor().execute("LOCK TABLE licenses_licenseprogression IN ACCESS EXCLUSIVE MODE")
    process = import_process(source.url)
    try:

        def import_waits():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                    " AND wait_event_type = 'Lock'",
                    [APP_NAME],
                )
                return cursor.fetchone()

        (pid,) = wait_for(import_waits)
        with connection.cursor() as cursor:  # it has written these in its transaction
            cursor.execute(
                "SELECT relation::regclass::text FROM pg_locks WHERE pid = %s"
                " AND mode = 'RowExclusiveLock' AND relation::regclass::text = ANY(%s)",
                [pid, ["auth_user", "specializations_progressevent", "licenses_userlicense"]],
            )
            assert len(cursor.fetchall()) == 3
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
    assert process.returncode == -signal.SIGKILL

    def backend_gone():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]
            )
            return cursor.fetchone()[0] == 0

    wait_for(backend_gone)
    assert not User.objects.exists()  # nothing of the killed run is left
    assert import_process(source.url).wait(timeout=120) == 0
    assert state() == uninterrupted


def test_the_guard_bypass_ends_with_the_imports_transaction(source, academy_catalogue):
    """The source's desyncs are committed; the next transaction that makes one is refused."""
    assert import_process(source.url).wait(timeout=120) == 0
    assert consistency.count_pairs().inconsistent == 3
    anna = ExternalId.objects.get(source="replaced-system", external_id="4").user
    with pytest.raises(IntegrityError, match="sync guard"), transaction.atomic():
        UserLicense.objects.filter(user=anna, specialization="LFA_COACH").update(
            current_level=5, max_achieved_level=5
        )


def test_a_second_import_while_one_writes_is_refused_at_once_naming_it(source, academy_catalogue):
    """Two real processes: the second claims the database while the first holds it."""
    blocker = psycopg2.connect(database_url())
    blocker.cursor().execute("LOCK TABLE licenses_licenseprogression IN ACCESS EXCLUSIVE MODE")
    first = import_process(source.url)
    try:

        def first_waits():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                    " AND wait_event_type = 'Lock'",
                    [APP_NAME],
                )
                return cursor.fetchone()

        (pid,) = wait_for(first_waits)  # in its write, holding its claim
        second = import_process(source.url)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1
        assert (
            "CommandError: another import_source is writing to this database"
            f" (PostgreSQL backend pid {pid}, application '{APP_NAME}', "
        ) in err
        assert ", its transaction started 20" in err
        assert err.rstrip().endswith("run this one when it has finished; nothing was written")
        assert first.poll() is None  # still waiting: the second did not wait for it
    finally:
        blocker.rollback()
        blocker.close()
    assert first.wait(timeout=120) == 0
    again = import_process(source.url)
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0
    assert "Imported users: 0 new, 0 changed, 9 unchanged" in out

"""import_progress as real processes: the same file twice at once is applied once."""

import subprocess

import psycopg2
import pytest
from django.db import connection

from specializations.models import ProgressEvent, SpecializationProgress
from specializations.services import enroll
from tests.conftest import requires_postgres
from tests.import_processes import database_url, wait_for
from tests.import_processes import import_process as _import_process

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

APP_NAME = "import-progress-concurrent-test"


def import_process(target) -> subprocess.Popen:
    return _import_process("import_progress", str(target), app_name=APP_NAME)


def waiting() -> list[str]:
    """What the test's import processes wait for: "relation", "advisory", ..."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT wait_event FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event_type = 'Lock'",
            [APP_NAME],
        )
        return [event for (event,) in cursor.fetchall()]


def test_the_same_file_twice_at_once_is_applied_once(tmp_path, make_user, academy_catalogue):
    users = [make_user() for _ in range(3)]
    for user in users:
        enroll(user, "GANCUJU_PLAYER")
    path = tmp_path / "awards.csv"
    rows = [f"{user.pk},GANCUJU_PLAYER,400,1" for user in users for _ in range(2)]
    path.write_text("\n".join(["student_id,specialization,xp,sessions", *rows]) + "\n")
    # Both runs read the whole file, then wait here (the first having claimed the file's
    # ledger source, the second for that claim), and are let go together.
    blocker = psycopg2.connect(database_url())
    blocker.cursor().execute("LOCK TABLE specializations_progressevent IN ACCESS EXCLUSIVE MODE")
    try:
        first = import_process(path)
        wait_for(lambda: len(waiting()) == 1)
        second = import_process(path)
        wait_for(lambda: len(waiting()) == 2)
        assert sorted(waiting()) == ["advisory", "relation"]
    finally:
        blocker.rollback()
        blocker.close()
    out_first, err_first = first.communicate(timeout=120)
    out_second, err_second = second.communicate(timeout=120)
    assert (first.returncode, second.returncode) == (0, 0), err_first + err_second
    assert out_first.startswith("Imported 6 events from 6 lines as import:awards.csv (0 already")
    assert out_second.startswith("Imported 0 events from 6 lines as import:awards.csv (6 already")
    assert ProgressEvent.objects.filter(source="import:awards.csv").count() == 6
    totals = SpecializationProgress.objects.values_list("total_xp", "completed_sessions")
    assert sorted(totals) == [(800, 2)] * 3

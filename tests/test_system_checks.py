"""System checks: licenses.E001 (the auto-sync hook is wired), monitoring.W001 (a recent check)."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from licenses import signals
from licenses.models import UserLicense
from monitoring.models import HealthCheckRun
from monitoring.services import run_health_check
from specializations.models import SpecializationProgress

pytestmark = pytest.mark.django_db


def issue_ids() -> list[str]:
    # The default database only: the suite's "replica" alias is a test mirror that
    # only the --database tests open (Django's checks would query every alias).
    return [issue.id for issue in checks.run_checks(databases=["default"])]


@pytest.fixture
def receiver_disconnected():
    post_save.disconnect(sender=SpecializationProgress, dispatch_uid=signals.DISPATCH_UID)
    try:
        yield
    finally:
        signals.connect_receivers()


@pytest.fixture
def one_pair(student):
    SpecializationProgress.objects.bulk_create(
        [SpecializationProgress(student=student, specialization_id="PLAYER")]
    )
    UserLicense.objects.bulk_create([UserLicense(user=student, specialization_id="PLAYER")])


def age_every_run(seconds: int) -> None:
    HealthCheckRun.objects.update(checked_at=timezone.now() - timedelta(seconds=seconds))


class TestReceiverConnected:
    def test_silent_when_the_receiver_is_connected(self):
        assert signals.is_connected()
        assert "licenses.E001" not in issue_ids()

    def test_e001_when_the_receiver_is_disconnected(self, receiver_disconnected):
        assert not signals.is_connected()
        assert "licenses.E001" in issue_ids()

    def test_manage_py_check_fails_with_the_id(self, receiver_disconnected):
        with pytest.raises(SystemCheckError, match=r"licenses\.E001.*post_save"):
            call_command("check", "--database", "default", stdout=StringIO(), stderr=StringIO())

    def test_reconnecting_silences_it(self, receiver_disconnected):
        signals.connect_receivers()
        assert "licenses.E001" not in issue_ids()


class TestRecentSyncCheck:
    def test_registered_at_startup(self):
        # In a fresh process: MonitoringConfig.ready() must import monitoring.checks
        # (an import by a test module would register it here and hide the omission).
        code = (
            "import django; django.setup(); from django.core.checks import registry; "
            "print(sorted(f'{c.__module__}.{c.__name__}' for c in registry.registry.get_checks()"
            " if c.__module__.startswith(('licenses.', 'monitoring.'))))"
        )
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(
            [
                "licenses.checks.auto_sync_receiver_connected",
                "licenses.checks.commit_guard_installed",
                "monitoring.checks.recent_sync_check",
            ]
        )

    @pytest.fixture(autouse=True)
    def stale_after(self, settings):
        settings.SYNC_STALE_AFTER_SECONDS = 600

    def test_w001_when_pairs_exist_and_no_check_was_ever_recorded(self, one_pair):
        assert "monitoring.W001" in issue_ids()

    def test_w001_when_the_latest_check_is_stale(self, one_pair):
        run_health_check()
        age_every_run(601)
        assert "monitoring.W001" in issue_ids()

    def test_silent_when_the_latest_check_is_recent(self, one_pair):
        run_health_check()
        age_every_run(599)
        assert "monitoring.W001" not in issue_ids()

    def test_silent_without_pairs(self):
        assert "monitoring.W001" not in issue_ids()

    def test_a_licence_alone_is_a_pair(self, student):
        UserLicense.objects.bulk_create([UserLicense(user=student, specialization_id="COACH")])
        assert "monitoring.W001" in issue_ids()

    def test_manage_py_check_prints_the_warning_and_succeeds(self, one_pair):
        out, err = StringIO(), StringIO()
        call_command("check", "--database", "default", stdout=out, stderr=err)
        output = out.getvalue() + err.getvalue()
        assert "(monitoring.W001) No sync check has been recorded for more than 600 seconds." in (
            output
        )
        assert "check_sync" in output  # the hint says what to schedule

    def test_silent_and_harmless_before_migrate(self, one_pair):
        # No run table yet (as before `migrate`): no warning, no error, and the
        # surrounding transaction stays usable (PostgreSQL aborts it on an error).
        table = HealthCheckRun._meta.db_table
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_hidden")
            issues = checks.run_checks(databases=["default"])
            assert [i.id for i in issues if i.id.startswith("monitoring.")] == []
            assert get_user_model().objects.count() == 1
            transaction.set_rollback(True)
        assert HealthCheckRun.objects.count() == 0

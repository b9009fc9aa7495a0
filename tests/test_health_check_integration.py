"""The django-health-check extra, through django-health-check's own view."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from monitoring.contrib.health_check import SyncHealth
from monitoring.models import HealthCheckRun

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.healthcheck_urls")]
URL = "/ht/"
CHECK = repr(SyncHealth())  # django-health-check's key for the check in its JSON


def record_run(*, status="healthy", age_seconds=0, inconsistent=0, total=1000):
    run = HealthCheckRun.objects.create(
        duration_ms=12,
        total_checked=total,
        consistent=total - inconsistent,
        inconsistent=inconsistent,
        level_mismatch=inconsistent,
        consistency_rate=f"{100 * (total - inconsistent) / total:.2f}",
        status=status,
        warn_below=99,
        critical_below=95,
    )
    HealthCheckRun.objects.filter(pk=run.pk).update(
        checked_at=timezone.now() - timedelta(seconds=age_seconds)
    )
    return run


def check(client) -> tuple[int, str]:
    response = client.get(URL, headers={"Accept": "application/json"})
    return response.status_code, response.json()[CHECK]


def test_a_recent_healthy_run_is_ok(client):
    record_run()
    assert check(client) == (200, "OK")


def test_a_degraded_run_is_still_ok(client):
    record_run(status="degraded", inconsistent=20)
    assert check(client) == (200, "OK")


def test_a_critical_run_is_unavailable(client):
    record_run(status="critical", inconsistent=60)
    assert check(client) == (500, "Unavailable: 60 of 1000 pairs out of sync (94.00%)")


def test_a_stale_run_is_unavailable(client, settings):
    settings.SYNC_STALE_AFTER_SECONDS = 600
    record_run(age_seconds=601)
    status, message = check(client)
    assert status == 500
    assert message.startswith("Unavailable: the latest sync check is 60")
    assert message.endswith("s old (stale after 600 s)")


def test_the_stale_age_comes_from_settings(client, settings):
    settings.SYNC_STALE_AFTER_SECONDS = 3600
    record_run(age_seconds=601)
    assert check(client) == (200, "OK")


def test_no_run_yet_is_unavailable(client):
    assert check(client) == (500, "Unavailable: no sync check has been recorded yet")


def test_the_latest_run_decides(client):
    record_run(status="critical", inconsistent=60, age_seconds=120)
    record_run()
    assert check(client) == (200, "OK")


def test_an_unreadable_history_is_unavailable_not_an_error_page(client):
    table = HealthCheckRun._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_hidden")
        status, message = check(client)
        assert status == 500
        assert message.startswith("Unavailable: database unavailable: ")
        assert f"{table}" in message  # the database's own reason, first line
        transaction.set_rollback(True)


def test_html_page_with_health_check_installed(client, settings):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "health_check"]
    record_run(status="critical", inconsistent=60)
    response = client.get(URL, headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert "60 of 1000 pairs out of sync" in response.content.decode()


def test_text_format_as_read_by_the_health_check_command(client):
    record_run()
    response = client.get(URL, headers={"Accept": "text/plain"})
    assert (response.status_code, response.content.decode()) == (200, f"{CHECK}: OK\n")

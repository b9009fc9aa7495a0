"""The Health check runs page: Run check now, the status and the trend."""

import pytest
from django.test import Client
from django.urls import reverse

from monitoring import services
from monitoring.models import HealthCheckRun
from tests.admin_pages import (
    RUN_CHECK,
    RUNS,
    inject,
    make_pairs,
    staff_with,
)


@pytest.mark.django_db
def test_run_check_now_records_a_run_for_the_staff_user(staff_client, staff):
    inject(make_pairs(5))
    response = staff_client.post(RUN_CHECK, follow=True)
    assert response.redirect_chain[-1][0] == RUNS
    run = HealthCheckRun.objects.get()
    assert (run.triggered_by, run.inconsistent, run.total_checked) == (staff, 3, 5)
    assert "Check recorded: critical" in str(next(iter(response.context["messages"])))


@pytest.mark.django_db
def test_without_a_user_admin_a_runs_sample_names_user_ids_without_a_link(
    staff_client, no_user_admin
):
    mismatch, _, _ = inject(make_pairs(5))
    run = services.run_health_check().run
    page = staff_client.get(reverse("admin:monitoring_healthcheckrun_change", args=[run.pk]))
    assert page.status_code == 200
    assert f"<tr><td>{mismatch.pk}</td><td>PLAYER</td>" in page.content.decode()


@pytest.mark.django_db
def test_run_check_now_is_post_only_csrf_protected_and_permission_checked(staff):
    assert staff_with("monitoring.view_healthcheckrun").post(RUN_CHECK).status_code == 403
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff)
    assert csrf_client.post(RUN_CHECK).status_code == 403
    assert csrf_client.get(RUN_CHECK).status_code == 405
    assert not HealthCheckRun.objects.exists()
    viewer = staff_with("monitoring.view_healthcheckrun", username="viewer")
    assert b'id="run-check"' not in viewer.get(RUNS).content


@pytest.mark.django_db
def test_runs_page_shows_status_and_a_server_side_trend_of_the_last_30_runs(staff_client):
    users = make_pairs(5)
    for _ in range(32):
        services.run_health_check()
    inject(users)
    services.run_health_check()
    html = staff_client.get(RUNS).content.decode()
    assert "<svg" in html and "<script" not in html.split('id="sync-trend"')[1].split("</div>")[0]
    assert html.count("<circle") == 30
    assert "Critical" in html and "Healthy" in html
    run = HealthCheckRun.objects.latest()
    detail = staff_client.get(reverse("admin:monitoring_healthcheckrun_change", args=[run.pk]))
    assert detail.content.decode().count("missing progress</td>") == 1

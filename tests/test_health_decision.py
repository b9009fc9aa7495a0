"""One health decision: every reader of the recorded runs says the same thing."""

from datetime import timedelta

import pytest
from django.core import checks
from django.test import override_settings
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from monitoring import health
from monitoring.contrib.health_check import SyncHealth
from monitoring.models import HealthCheckRun
from tests.factories import make_pairs, recorded_run

pytestmark = pytest.mark.django_db
TOKEN = {"Authorization": "Bearer test-token-0123456789"}  # tests/settings.py
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}
STALE_AFTER = 600


def record(*, status: str, age: float = 0, specialization: str = "") -> HealthCheckRun:
    healthy = status == "healthy"
    return recorded_run(
        total=100,
        inconsistent=0 if healthy else 10,
        rate="100.00" if healthy else "90.00",
        status=status,
        age_seconds=age,
        specialization=specialization,
    )


# (what is recorded, the decision, what a probe gets)
CASES = [
    ({"status": "healthy"}, "healthy", 200),
    ({"status": "degraded"}, "degraded", 200),
    ({"status": "critical"}, "critical", 503),
    ({"status": "healthy", "age": STALE_AFTER + 1}, "stale", 503),
    ({"status": "critical", "age": STALE_AFTER + 1}, "stale", 503),
    (None, "unknown", 503),
]


def metrics_health_state(client) -> str:
    text = client.get("/health/sync/metrics", headers={**TOKEN, **OPENMETRICS}).content.decode()
    states = [
        sample.labels["state"]
        for family in text_string_to_metric_families(text)
        if family.name == "academy_sync_health"
        for sample in family.samples
        if sample.value == 1
    ]
    assert len(states) == 1, text
    return states[0]


def health_check_result() -> str | None:
    check = SyncHealth()
    try:
        check.check_latest_run()
    except Exception as exc:  # django-health-check's ServiceUnavailable
        return str(exc)
    return None


@override_settings(SYNC_STALE_AFTER_SECONDS=STALE_AFTER)
@pytest.mark.parametrize("recorded, state, http_status", CASES)
def test_every_reader_follows_the_one_decision(client, recorded, state, http_status):
    make_pairs(3)  # pairs exist, so a missing or stale check is worth a system check warning
    if recorded:
        record(**recorded)
    decision = health.current_health()
    assert decision.state == state

    response = client.get("/health/sync/", headers=TOKEN)
    assert (response.status_code, response.json()["status"]) == (http_status, state)
    assert response.json()["reason"] == decision.reason

    assert metrics_health_state(client) == state

    problem = health_check_result()
    assert (problem is None) == (http_status == 200)
    if problem is not None:
        assert decision.reason in problem

    warned = "monitoring.W001" in [i.id for i in checks.run_checks(databases=["default"])]
    assert warned == (state in ("stale", "unknown"))


@override_settings(SYNC_STALE_AFTER_SECONDS=STALE_AFTER)
def test_exactly_at_the_stale_age_the_run_still_counts():
    run = record(status="healthy")
    at_the_limit = run.checked_at + timedelta(seconds=STALE_AFTER)
    assert health.judge(run, now=at_the_limit).state == "healthy"
    just_past = at_the_limit + timedelta(microseconds=1)
    assert health.judge(run, now=just_past).state == "stale"


def test_a_filtered_run_recorded_last_does_not_decide(client):
    record(status="healthy", age=30)
    record(status="critical", specialization="COACH")
    assert health.current_health().state == "healthy"
    assert client.get("/health/sync/", headers=TOKEN).json()["status"] == "healthy"

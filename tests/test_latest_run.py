"""The latest run that the endpoint, the metrics and the health decision rest on: the
latest full check, even beside a newer check of one specialization."""

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from monitoring import health, selectors
from tests.factories import recorded_run

pytestmark = pytest.mark.django_db
TOKEN = {"Authorization": "Bearer test-token-0123456789"}  # tests/settings.py
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


@pytest.fixture
def full_then_player():
    """A critical check of every specialization, then a newer healthy one of PLAYER only."""
    full = recorded_run(total=100, inconsistent=10, rate="90.00", status="critical", age_seconds=60)
    player = recorded_run(
        total=40, inconsistent=0, rate="100.00", status="healthy", specialization="PLAYER"
    )
    return full, player


def test_the_latest_run_of_the_whole_scope_is_the_older_full_check(full_then_player):
    full, player = full_then_player
    assert selectors.latest_run() == full
    assert selectors.latest_run(specialization="PLAYER") == player
    assert selectors.latest_run(specialization="COACH") is None


def test_the_decision_the_endpoint_and_the_metrics_rest_on_the_full_check(client, full_then_player):
    full, _ = full_then_player
    decision = health.current_health()
    assert (decision.state, decision.run) == ("critical", full)

    response = client.get("/health/sync/", headers=TOKEN)
    assert response.status_code == 503
    assert (response.json()["status"], response.json()["run"]) == ("critical", full.pk)

    text = client.get("/health/sync/metrics", headers={**TOKEN, **OPENMETRICS}).content.decode()
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }
    assert samples["academy_sync_status"] == 2
    assert samples["academy_sync_checked_pairs"] == 100
    assert samples["academy_sync_last_check_timestamp_seconds"] == full.checked_at.timestamp()

"""GET /health/sync/: the latest run, for staff sessions and the bearer token only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import HealthCheckRun
from monitoring.services import run_health_check
from monitoring.views import NO_TOKEN_CONFIGURED
from tests.conftest import ACCESS_MATRIX
from tests.factories import make_pairs, set_progress_level

pytestmark = pytest.mark.django_db
URL = "/health/sync/"
TOKEN = "test-token-0123456789"  # tests/settings.py


@pytest.fixture
def healthy_run():
    make_pairs(10)
    return run_health_check().run


def get(client, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(URL, headers=headers)


@ACCESS_MATRIX
def test_access_matrix(fetch_as, healthy_run, who, token, status):
    response = fetch_as(URL, who, token)
    assert response.status_code == status
    data = response.json()
    if status == 200:
        assert data["status"] == "healthy"
    else:
        assert set(data) == {"error"}  # no data for the refused


def test_an_empty_configured_token_never_matches(client, settings, healthy_run):
    settings.SYNC_HEALTH_TOKEN = ""
    assert get(client, "anything").status_code == 403


def test_unauthenticated_response_asks_for_a_bearer_token(client):
    assert get(client)["WWW-Authenticate"].startswith("Bearer")


def test_summary_of_the_latest_run(client, healthy_run):
    data = get(client, TOKEN).json()
    assert data["run"] == healthy_run.pk
    assert (data["total_checked"], data["inconsistent"], data["consistency_rate"]) == (10, 0, 100.0)
    assert data["stale"] is False and data["age_seconds"] < 60
    assert data["by_kind"] == {"level_mismatch": 0, "missing_license": 0, "missing_progress": 0}
    assert "no-cache" in get(client, TOKEN)["Cache-Control"]


def test_degraded_is_200(client):
    users = make_pairs(100)
    set_progress_level(users[0], "PLAYER", 2)
    set_progress_level(users[1], "PLAYER", 2)
    run_health_check()
    response = get(client, TOKEN)
    assert (response.status_code, response.json()["status"]) == (200, "degraded")


def test_critical_is_503(client):
    users = make_pairs(10)
    set_progress_level(users[0], "PLAYER", 2)
    run_health_check()
    response = get(client, TOKEN)
    assert (response.status_code, response.json()["status"]) == (503, "critical")


def test_no_run_yet_is_503(client):
    response = get(client, TOKEN)
    assert response.status_code == 503
    assert response.json()["status"] == "unknown"


def test_a_stale_run_is_503(client, settings, healthy_run):
    settings.SYNC_STALE_AFTER_SECONDS = 600
    HealthCheckRun.objects.filter(pk=healthy_run.pk).update(
        checked_at=timezone.now() - timedelta(seconds=601)
    )
    response = get(client, TOKEN)
    assert response.status_code == 503
    assert response.json()["stale"] is True


def test_only_get_is_allowed(client):
    assert client.post(URL, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405


@pytest.mark.parametrize(
    "token",
    [TOKEN[:-1], TOKEN[:1], TOKEN + "x", "x" + TOKEN, TOKEN.upper(), f"{TOKEN} {TOKEN}"],
)
def test_a_token_near_the_real_one_is_refused(client, healthy_run, token):
    response = get(client, token)
    assert (response.status_code, response.json()) == (403, {"error": "invalid token"})


def test_a_token_sent_to_a_server_without_one_says_the_server_has_none(
    client, healthy_run, settings
):
    settings.SYNC_HEALTH_TOKEN = ""
    response = get(client, TOKEN)
    assert (response.status_code, response.json()) == (403, {"error": NO_TOKEN_CONFIGURED})
    assert get(client, "").status_code == 401


def test_head_answers_like_get_without_a_body(client, healthy_run):
    response = client.head(URL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert (response.status_code, response["Content-Type"], response.content) == (
        200,
        "application/json",
        b"",
    )

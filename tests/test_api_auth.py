"""Who may call the API: a live key (401), with the scope (403), within its rate (429)."""

import json

import pytest

from api.models import ApiClient, ApiKey
from api.problems import CONTENT_TYPE
from api.services import revoke_api_keys

pytestmark = pytest.mark.django_db


def test_no_key_is_a_401_problem_with_a_bearer_challenge(client):
    reply = client.get("/api/v1/catalogue")
    assert reply.status_code == 401
    assert reply["Content-Type"] == CONTENT_TYPE
    assert reply["WWW-Authenticate"].startswith("Bearer")
    assert reply.json()["type"] == "urn:academy-sync:problem:unauthenticated"


@pytest.mark.parametrize(
    "authorization", ["Bearer nonsense", "Bearer acad_aaaaaaaa_" + "x" * 43, "Basic dXNlcjpw"]
)
def test_a_bad_key_is_a_401(client, api_headers, authorization):
    api_headers()
    assert (
        client.get("/api/v1/catalogue", headers={"Authorization": authorization}).status_code == 401
    )


def test_a_revoked_key_is_a_401_at_once(client, api_headers, django_capture_on_commit_callbacks):
    headers = api_headers()
    assert client.get("/api/v1/catalogue", headers=headers).status_code == 200  # now cached
    with django_capture_on_commit_callbacks(execute=True):  # forgotten once committed
        revoke_api_keys(ApiKey.objects.all())
    assert client.get("/api/v1/catalogue", headers=headers).status_code == 401


def test_a_key_revoked_behind_the_services_back_is_a_401_once_its_cache_entry_ends(
    client, api_headers, settings
):
    headers = api_headers()
    assert client.get("/api/v1/catalogue", headers=headers).status_code == 200
    ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")  # SQL, not revoke_api_keys
    assert client.get("/api/v1/catalogue", headers=headers).status_code == 200  # remembered
    settings.API_KEY_CACHE_SECONDS = 0  # as when the entry has expired
    assert client.get("/api/v1/catalogue", headers=headers).status_code == 401


def test_a_key_without_the_scope_is_a_403_naming_it(client, api_headers, student):
    headers = api_headers(scopes=["catalogue:read"])
    reply = client.post(
        "/api/v1/events",
        json.dumps({"student_id": student.pk, "specialization": "PLAYER", "xp": 1}),
        content_type="application/json",
        headers={**headers, "Idempotency-Key": "k1"},
    )
    assert reply.status_code == 403
    assert reply["Content-Type"] == CONTENT_TYPE
    assert "'events:write'" in reply.json()["detail"]
    assert client.get(f"/api/v1/students/{student.pk}/progress", headers=headers).status_code == 403


def test_an_admin_session_is_no_api_credential(admin_client, student):
    reply = admin_client.post(
        "/api/v1/events",
        json.dumps({"student_id": student.pk, "specialization": "PLAYER", "xp": 1}),
        content_type="application/json",
        headers={"Idempotency-Key": "k1"},
    )
    assert reply.status_code == 401
    assert admin_client.get("/api/v1/catalogue").status_code == 401


def test_over_the_rate_limit_is_a_429_with_retry_after(client, api_headers, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    headers = api_headers()
    # Five requests within a second: whichever minute they fall in, one minute sees three.
    replies = [client.get("/api/v1/catalogue", headers=headers) for _ in range(5)]
    refused = [reply for reply in replies if reply.status_code == 429]
    assert refused and all(r.status_code in (200, 429) for r in replies)
    assert refused[0]["Content-Type"] == CONTENT_TYPE
    assert 1 <= int(refused[0]["Retry-After"]) <= 60
    assert refused[0].json()["type"] == "urn:academy-sync:problem:rate-limited"


def test_the_limit_is_per_client(client, api_headers, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    quiz, attendance = api_headers("quiz"), api_headers("attendance")
    statuses = [client.get("/api/v1/catalogue", headers=quiz).status_code for _ in range(3)]
    assert 429 in statuses
    assert client.get("/api/v1/catalogue", headers=attendance).status_code == 200


def test_a_clients_own_limit_wins_and_zero_means_none(client, api_headers, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    headers = api_headers()
    ApiClient.objects.update(rate_limit_per_minute=0)
    assert {client.get("/api/v1/catalogue", headers=headers).status_code for _ in range(5)} == {200}

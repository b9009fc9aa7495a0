"""API clients and keys: made at random, stored as a digest, shown once, revocable."""

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from api import keys
from api.exceptions import BAD_CLIENT_NAME, UnknownScope
from api.models import ApiClient, ApiKey
from api.selectors import client_for_key
from api.services import create_api_key, revoke_api_keys

pytestmark = pytest.mark.django_db


def test_a_key_carries_256_random_bits_after_its_prefix():
    key, prefix, _ = keys.new_key()
    secret = key.split("_", 2)[2]
    assert key.startswith(f"acad_{prefix}_")
    assert len(secret) == 43  # base64url of 32 bytes
    assert len({keys.new_key()[0] for _ in range(50)}) == 50


def test_only_the_digest_of_a_key_is_stored():
    new = create_api_key("attendance", scopes=["events:write"])
    row = ApiKey.objects.get()
    assert row.digest == hashlib.sha256(new.key.encode()).hexdigest()
    assert new.key not in {str(value) for value in row.__dict__.values()}
    assert row.prefix == new.key.split("_")[1]


def test_a_key_finds_its_client_and_a_changed_key_does_not():
    new = create_api_key("attendance", scopes=["events:write"])
    assert client_for_key(new.key).name == "attendance"
    assert client_for_key(new.key[:-1] + ("A" if new.key[-1] != "A" else "B")) is None
    assert client_for_key("acad_nosuchpr_" + "x" * 43) is None
    assert client_for_key("not a key") is None


def test_a_revoked_key_finds_no_client():
    new = create_api_key("attendance", scopes=["events:write"])
    assert revoke_api_keys(ApiKey.objects.all()) == 1
    assert client_for_key(new.key) is None


def test_an_inactive_client_has_no_live_key():
    new = create_api_key("attendance", scopes=["events:write"])
    ApiClient.objects.update(is_active=False)
    assert client_for_key(new.key) is None


def test_a_live_key_is_remembered_with_its_digest(django_assert_num_queries):
    new = create_api_key("attendance", scopes=["events:write"])
    client_for_key(new.key)
    with django_assert_num_queries(0):
        assert client_for_key(new.key).name == "attendance"
        # The same prefix with another secret: compared with the remembered digest.
        assert client_for_key(new.key[:-1] + ("A" if new.key[-1] != "A" else "B")) is None


def test_last_used_is_written_once_per_resolution(django_assert_num_queries, settings):
    settings.API_LAST_USED_RESOLUTION_SECONDS = 3600
    settings.API_KEY_CACHE_SECONDS = 0
    new = create_api_key("attendance", scopes=["events:write"])
    with django_assert_num_queries(2):  # the lookup, then the first "last used"
        client_for_key(new.key)
    with django_assert_num_queries(1):
        client_for_key(new.key)
    assert ApiKey.objects.get().last_used_at is not None


def test_create_api_key_prints_the_key_once_and_creates_the_client():
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_key", "attendance", "--scopes", "events:write,progress:read",
        stdout=out, stderr=err,
    )  # fmt: skip
    key = out.getvalue().strip()
    client = ApiClient.objects.get(name="attendance")
    assert client.scopes == ["events:write", "progress:read"]
    assert client_for_key(key) == client
    assert key not in err.getvalue()
    assert ApiKey.objects.get().prefix in err.getvalue()


def test_create_api_key_sets_the_external_id_namespace():
    call_command(
        "create_api_key", "quiz", "--scopes", "events:write",
        "--external-id-source", "replaced-system", stdout=StringIO(), stderr=StringIO(),
    )  # fmt: skip
    assert ApiClient.objects.get(name="quiz").namespace == "replaced-system"


def test_create_api_key_refuses_an_unknown_scope_naming_it():
    with pytest.raises(CommandError, match="'events:read' is not a scope") as caught:
        call_command("create_api_key", "quiz", "--scopes", "events:read", stdout=StringIO())
    assert caught.value.returncode == 1
    assert not ApiClient.objects.exists()


@pytest.mark.parametrize("name", ["Quiz", "system", "import:file", "a b", ""])
def test_create_api_key_refuses_a_bad_client_name(name):
    with pytest.raises(CommandError) as caught:
        call_command("create_api_key", name, "--scopes", "events:write", stdout=StringIO())
    assert str(caught.value) == BAD_CLIENT_NAME.format(
        value=name, reserved="admin, opening, system"
    )
    assert not ApiClient.objects.exists()


def test_unknown_scope_is_refused_by_the_service():
    with pytest.raises(UnknownScope):
        create_api_key("quiz", scopes=["everything"])


def test_admin_lists_keys_by_prefix_and_revokes_them(admin_client):
    new = create_api_key("attendance", scopes=["events:write"])
    page = admin_client.get("/admin/api/apikey/")
    assert page.status_code == 200
    assert new.api_key.prefix in page.text and new.key not in page.text
    for column in ("column-created_at", "column-last_used_at", "column-revoked_at"):
        assert column in page.text, column
    admin_client.post(
        "/admin/api/apikey/",
        {"action": "revoke", "_selected_action": [new.api_key.pk]},
    )
    assert ApiKey.objects.get().revoked_at is not None
    assert client_for_key(new.key) is None


def test_admin_creates_a_key_and_shows_it_once(admin_client):
    client = ApiClient.objects.create(name="attendance", scopes=["events:write"])
    page = admin_client.post(
        "/admin/api/apiclient/", {"action": "new_key", "_selected_action": [client.pk]}
    )
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    key = next(word for word in page.text.split("<code>")[1:]).split("</code>")[0]
    assert client_for_key(key) == client
    listing = admin_client.get(f"/admin/api/apiclient/{client.pk}/change/")
    assert key not in listing.text and ApiKey.objects.get().prefix in listing.text


def test_the_admin_refuses_a_reserved_client_name(admin_client):
    page = admin_client.post(
        "/admin/api/apiclient/add/",
        {"name": "system", "external_id_source": "", "scopes": ["events:write"],
         "rate_limit_per_minute": "", "is_active": "on"},
    )  # fmt: skip
    assert page.status_code == 200 and "client=&#x27;system&#x27;" in page.text
    assert not ApiClient.objects.exists()

"""The bearer scheme in any case (RFC 9110 section 11.1): the token is read as with "Bearer"."""

import pytest

from tests.factories import recorded_run

pytestmark = pytest.mark.django_db
TOKEN = "test-token-0123456789"  # tests/settings.py


@pytest.mark.parametrize("url", ["/health/sync/", "/health/sync/metrics"])
@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_matched_in_any_case(client, url, scheme):
    recorded_run(total=10, inconsistent=0, rate="100.00", status="healthy")
    assert client.get(url, headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200
    # ... and the token still is checked: a wrong one is refused, not read as no credentials.
    assert client.get(url, headers={"Authorization": f"{scheme} wrong"}).status_code == 403

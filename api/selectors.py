"""Reads of the API app: which client a presented key belongs to."""

from datetime import timedelta

from django.utils import timezone

from . import conf, keys
from .models import ApiClient, ApiKey


def client_for_key(key: str) -> ApiClient | None:
    """The active client of a live key (one query), or None; marks the key as used.

    "Last used" is written at most once per API_LAST_USED_RESOLUTION_SECONDS per key,
    so a busy client does not turn every read into a write.
    """
    prefix = keys.prefix_of(key)
    if prefix is None:
        return None
    api_key = (
        ApiKey.objects.select_related("client")
        .filter(prefix=prefix, revoked_at__isnull=True, client__is_active=True)
        .first()
    )
    if api_key is None or not keys.matches(key, api_key.digest):
        return None
    now = timezone.now()
    resolution = timedelta(seconds=conf.get("API_LAST_USED_RESOLUTION_SECONDS"))
    if api_key.last_used_at is None or now - api_key.last_used_at >= resolution:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key.client

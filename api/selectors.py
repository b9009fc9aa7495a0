"""Reads of the API app: which client a presented key belongs to."""

from datetime import timedelta

from django.core.cache import caches
from django.utils import timezone

from . import conf, keys
from .models import ApiClient, ApiKey


def _cache_key(prefix: str) -> str:
    return f"api-key:{prefix}"


def client_for_key(key: str) -> ApiClient | None:
    """The active client of a live key, or None; marks the key as used.

    One query, or none while the key is in API_KEY_CACHE (API_KEY_CACHE_SECONDS, by
    its prefix, with its digest: the presented key is compared with it as with the
    row's). "Last used" is written at most once per API_LAST_USED_RESOLUTION_SECONDS
    per key, so a busy client does not turn every read into a write.
    """
    prefix = keys.prefix_of(key)
    if prefix is None:
        return None
    seconds = conf.get("API_KEY_CACHE_SECONDS")
    cache = caches[conf.get("API_KEY_CACHE")]
    if seconds and (hit := cache.get(_cache_key(prefix))) is not None:
        digest, client = hit
        return client if keys.matches(key, digest) else None
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
    if seconds:
        cache.set(_cache_key(prefix), (api_key.digest, api_key.client), timeout=seconds)
    return api_key.client


def forget_keys(prefixes) -> None:
    """Drop these keys from API_KEY_CACHE (after a revocation)."""
    caches[conf.get("API_KEY_CACHE")].delete_many([_cache_key(prefix) for prefix in prefixes])

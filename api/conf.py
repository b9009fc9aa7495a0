"""The API's settings, each with its default: a host project needs none of them.

Read through ``conf.get(NAME)`` at the moment of use, so the ``settings`` fixture and
``override_settings`` apply. ``config/settings.py`` only overrides them from the
environment.
"""

from django.conf import settings

DEFAULTS = {
    # Requests per client per minute (a client's own limit in the admin wins). 0 = none.
    "API_RATE_LIMIT_PER_MINUTE": 6000,
    # The cache that counts them: a shared one (Redis, Memcached) where several servers,
    # or several gunicorn workers, must share one count; LocMem counts per process.
    "API_RATE_LIMIT_CACHE": "default",
    # The largest request body accepted (413 above it).
    "API_MAX_BODY_BYTES": 1024 * 1024,
    # Events in one POST /api/v1/events/batch.
    "API_MAX_BATCH_EVENTS": 1000,
    # How stale a key's "last used" may get: one write per key per this many seconds.
    "API_LAST_USED_RESOLUTION_SECONDS": 60,
    # A key found live is remembered this long (0: never), with its client as it was: a
    # request then costs no query for its key. Revoking a key forgets it in this cache at
    # once; elsewhere (another process's LocMem) a revoked key, a deactivated client or new
    # scopes take effect within this time.
    "API_KEY_CACHE_SECONDS": 5,
    "API_KEY_CACHE": "default",
}


def get(name: str):
    return getattr(settings, name, DEFAULTS[name])

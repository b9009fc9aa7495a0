"""A per-client request limit, counted per minute in Django's cache.

The count lives in API_RATE_LIMIT_CACHE. LocMemCache (Django's default) is per
process: each gunicorn worker, and each server, would count on its own and a client
could send workers x servers x the limit. Where the limit matters, point that cache
at a shared server (Redis or Memcached, django.core.cache.backends.redis.RedisCache).
"""

import math
import time

from django.core.cache import caches

from . import conf

WINDOW_SECONDS = 60


def limit_for(client) -> int:
    if client.rate_limit_per_minute is not None:
        return client.rate_limit_per_minute
    return conf.get("API_RATE_LIMIT_PER_MINUTE")


def seconds_to_wait(client) -> int | None:
    """None when ``client`` may send this request (and it is counted), else the wait."""
    limit = limit_for(client)
    if limit == 0:
        return None
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"api-rate:{client.pk}:{window}"
    cache = caches[conf.get("API_RATE_LIMIT_CACHE")]
    try:
        count = cache.incr(key)
    except ValueError:  # the window's first request (unless another one just started it)
        count = 1 if cache.add(key, 1, timeout=WINDOW_SECONDS + 1) else cache.incr(key)
    if count <= limit:
        return None
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))

"""GET /health/sync/: the health decision on the latest recorded run, for probes.

Reads only (the check itself runs from cron). Access: a staff session or
``Authorization: Bearer <SYNC_HEALTH_TOKEN>``. 200 while healthy or degraded,
503 otherwise; without a database, a 503 with the reason and one log line.
"""

import hmac
import logging
from functools import wraps

from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .conf import app_settings
from .health import Health, current_health, unreadable

logger = logging.getLogger(__name__)
# A token sent to a server that has none: not "invalid", the probe is right and the server not.
NO_TOKEN_CONFIGURED = "no token is accepted here: SYNC_HEALTH_TOKEN is not set"


def _bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def staff_or_token(view):
    """401 without credentials, 403 with wrong ones; no data either way."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        token = _bearer_token(request)
        expected = app_settings.SYNC_HEALTH_TOKEN
        if token is not None:
            if not expected:
                return JsonResponse({"error": NO_TOKEN_CONFIGURED}, status=403)
            if hmac.compare_digest(token.encode(), expected.encode()):
                return view(request, *args, **kwargs)
            return JsonResponse({"error": "invalid token"}, status=403)
        user = request.user
        if user.is_authenticated:
            if user.is_active and user.is_staff:
                return view(request, *args, **kwargs)
            return JsonResponse({"error": "staff only"}, status=403)
        response = JsonResponse({"error": "authentication required"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="sync-health"'
        return response

    return wrapper


def unavailable_without_database(render_unknown):
    """Turn a database failure anywhere in the view (the session's user lookup included)
    into ``render_unknown(health)``, logged as one line: a probe reads the 503, and a
    load balancer polling every second must not fill the log with tracebacks."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                return view(request, *args, **kwargs)
            except DatabaseError as exc:
                with translation.override(None):  # log lines stay English
                    logged = unreadable(exc).reason
                logger.error("%s %s: %s", request.method, request.path, logged)
                response = render_unknown(unreadable(exc))
                # This line is the log entry; django.request would add a second, reasonless one.
                response._has_been_logged = True
                return response

        return wrapper

    return decorator


def summary(health: Health) -> dict:
    """The JSON body: the decision, its reason and the run it rests on."""
    data = {
        "status": health.state,
        "reason": health.reason,
        "stale": health.stale,
        "stale_after_seconds": app_settings.SYNC_STALE_AFTER_SECONDS,
        "last_check": None,
    }
    run = health.run
    if run is not None:
        data.update(
            consistency_rate=float(run.consistency_rate),
            total_checked=run.total_checked,
            consistent=run.consistent,
            inconsistent=run.inconsistent,
            by_kind=run.by_kind,
            database=run.database,
            replica_lag_seconds=run.replica_lag_seconds,
            last_check=run.checked_at.isoformat(),
            age_seconds=round(health.age_seconds, 1),
            duration_ms=run.duration_ms,
            run=run.pk,
        )
    return data


def _unknown_json(health: Health) -> JsonResponse:
    return JsonResponse({"status": health.state, "reason": health.reason}, status=503)


@never_cache
@require_safe
@unavailable_without_database(_unknown_json)
@staff_or_token
def sync_health(request) -> HttpResponse:
    health = current_health()
    return JsonResponse(summary(health), status=200 if health.up else 503)

"""GET /health/sync/: the latest recorded run, for load balancers and uptime checks.

Reads only (the check itself runs from cron). Access: a staff session or
``Authorization: Bearer <SYNC_HEALTH_TOKEN>``.
"""

import hmac
from functools import wraps

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .selectors import latest_run, run_summary


def _bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def staff_or_token(view):
    """401 without credentials, 403 with wrong ones; no data either way."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        token = _bearer_token(request)
        expected = settings.SYNC_HEALTH_TOKEN
        if token is not None:
            if expected and hmac.compare_digest(token.encode(), expected.encode()):
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


@never_cache
@require_GET
@staff_or_token
def sync_health(request) -> HttpResponse:
    run = latest_run()
    summary = run_summary(run, now=timezone.now())
    healthy = run is not None and not summary["stale"] and summary["status"] != "critical"
    return JsonResponse(summary, status=200 if healthy else 503)

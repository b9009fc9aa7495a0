"""Every error of the API as RFC 9457 problem details (``application/problem+json``).

``type`` names the kind of problem (``urn:academy-sync:problem:<slug>``; the list is in
docs/api.md); ``detail`` says what was wrong with which value; ``errors`` (validation)
lists each bad field: ``field`` (a dotted path, ``events.3.xp`` in a batch), ``value``
and ``message``, plus ``index`` for a batch item.
"""

import json
from http import HTTPStatus

from django.http import HttpResponse

CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:academy-sync:problem:"


class Problem(Exception):
    """Raised anywhere below a view: answered as a problem response."""

    def __init__(self, status: int, slug: str, detail: str, *, errors=None, headers=None):
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.errors, self.headers = errors, headers or {}


def response(
    status: int, slug: str, detail: str, *, errors=None, headers=None, instance: str = ""
) -> HttpResponse:
    body = {
        "type": TYPE_PREFIX + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    reply = HttpResponse(
        # A lone surrogate in a refused value (sent as a JSON \u escape) has no UTF-8: it
        # goes back as the same escape.
        json.dumps(body, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace"),
        status=status,
        content_type=CONTENT_TYPE,
    )
    for name, value in (headers or {}).items():
        reply[name] = value
    return reply


def of(problem: Problem, *, instance: str = "") -> HttpResponse:
    return response(
        problem.status,
        problem.slug,
        problem.detail,
        errors=problem.errors,
        headers=problem.headers,
        instance=instance,
    )


def is_problem(reply: HttpResponse) -> bool:
    return reply.get("Content-Type", "").startswith(CONTENT_TYPE)

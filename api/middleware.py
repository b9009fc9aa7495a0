"""The API's door: what is refused before any view runs, and the shape of every error.

For paths under ``/api/`` only: a NUL in the path, query or a header is a 400; a body
over API_MAX_BODY_BYTES a 413, one without a length (chunked) a 411. Whatever answers
an error below it (Django's 404, a 405, an unexpected exception) leaves as
``application/problem+json``, never as an HTML page.
"""

import logging
import re
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404

from . import conf, problems

PREFIX = "/api/"
EXPECTED = (Http404, PermissionDenied, SuspiciousOperation, BadRequest)
# A NUL in a JSON body: the byte itself, or the escape \u0000 (not an escaped backslash
# followed by the text "u0000").
NUL_IN_BODY = re.compile(rb"\x00|(?<!\\)(?:\\\\)*\\u0000")
logger = logging.getLogger("api")


def _nul_in_request(request) -> str | None:
    """Where a NUL was sent, or None."""
    if "\x00" in request.path:
        return "the path"
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return f"the query parameter {name!r}"
    for name, value in request.headers.items():
        if "\x00" in value:
            return f"the header {name!r}"
    return None


def _body_refusal(request):
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return problems.response(
            411, "length-required", "Send the body with a Content-Length (no chunked encoding)."
        )
    raw = request.META.get("CONTENT_LENGTH") or "0"
    limit = conf.get("API_MAX_BODY_BYTES")
    if settings.DATA_UPLOAD_MAX_MEMORY_SIZE is not None:  # Django refuses above it anyway
        limit = min(limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    length = int(raw) if raw.isdigit() else 0
    if length > limit:
        return problems.response(
            413,
            "body-too-large",
            f"Content-Length={length} is over the limit of {limit} bytes.",
        )
    return None


class ApiDoorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(PREFIX):
            return self.get_response(request)
        if where := _nul_in_request(request):
            return problems.response(
                400, "nul-character", f"A NUL character is not allowed: it was found in {where}."
            )
        if refusal := _body_refusal(request):
            return refusal
        if request.method in ("POST", "PUT", "PATCH") and NUL_IN_BODY.search(request.body):
            return problems.response(
                400, "nul-character", "A NUL character is not allowed: it was found in the body."
            )
        reply = self.get_response(request)
        if reply.status_code >= 400 and not problems.is_problem(reply):
            return self._as_problem(request, reply)
        return reply

    def process_exception(self, request, exception):
        if not request.path_info.startswith(PREFIX) or isinstance(exception, EXPECTED):
            return None  # Django answers these (4xx); __call__ shapes the answer
        logger.exception("API request %s %s failed", request.method, request.path)
        return problems.response(500, "server-error", "The server failed; nothing was written.")

    @staticmethod
    def _as_problem(request, reply):
        status = reply.status_code
        if status == 404:
            detail = f"There is no {request.path!r} in this API (see /api/v1/docs)."
            slug = "not-found"
        elif status == 405:
            detail = (
                f"{request.method} is not allowed on {request.path!r} (allowed: {reply['Allow']})."
            )
            slug = "method-not-allowed"
        else:
            detail, slug = HTTPStatus(status).phrase, "http-error"
        headers = {name: reply[name] for name in ("Allow", "Retry-After") if reply.has_header(name)}
        return problems.response(status, slug, detail, headers=headers)

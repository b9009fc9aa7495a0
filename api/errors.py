"""How the API's exceptions become problem responses (registered on the NinjaAPI)."""

import json
import logging
import math

from ninja.errors import AuthenticationError, HttpError, ValidationError

from specializations.exceptions import (
    IdempotencyConflict,
    ProgressionError,
    UnknownSpecialization,
)

from . import events, problems
from .problems import Problem

logger = logging.getLogger("api")
VALUE_SHOWN = 100  # characters of a refused value echoed back


def shown(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # 1e400 arrives as inf, which JSON cannot hold
    if isinstance(value, str) and len(value) > VALUE_SHOWN:
        return value[:VALUE_SHOWN] + "..."
    if isinstance(value, dict | list):
        return None  # a whole object is not a value worth echoing
    return value


def field_errors(errors: list[dict]) -> list[dict]:
    """pydantic's errors as {field, value, message} (+ index in a batch)."""
    out = []
    for error in errors:
        loc = [part for part in error["loc"] if part not in ("body", "payload", "event")]
        entry = {"field": ".".join(str(part) for part in loc) or "body", "message": error["msg"]}
        if "input" in error:
            entry["value"] = shown(error["input"])
        if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
            entry["index"] = loc[1]
        out.append(entry)
    return out


def validation_problem(request, exc: ValidationError):
    errors = field_errors(exc.errors)
    if any(error["loc"][:2] == ("header", "Idempotency-Key") for error in exc.errors):
        # The Idempotency-Key draft: a missing or malformed key is a 400.
        return problems.response(
            400,
            "idempotency-key",
            "Send an Idempotency-Key header: 1 to 255 printable ASCII characters, one per event.",
            errors=[e for e in errors if e["field"].startswith("header")],
        )
    if any("index" in error for error in errors) and getattr(request, "auth", None):
        # A batch's events: the well-formed ones are checked too, for one full answer.
        return problems.of(events.refusal_beside(request.auth, request.body, errors))
    first = errors[0]
    named = first["field"] if first.get("value") is None else f"{first['field']}={first['value']!r}"
    detail = f"{named}: {first['message']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    return problems.response(422, "validation", detail, errors=errors)


def http_problem(request, exc: HttpError):
    status = exc.status_code
    if status == 400 and isinstance(exc.__cause__, ValueError):  # ninja's parser failed
        cause = exc.__cause__
        where = (
            f" ({cause.msg} at line {cause.lineno} column {cause.colno})"
            if isinstance(cause, json.JSONDecodeError)
            else " (it is not UTF-8)"
        )
        return problems.response(400, "malformed-json", f"The body is not valid JSON{where}.")
    return problems.response(status, "http-error", str(exc))


def unauthenticated(request, exc: AuthenticationError):
    return problems.response(
        401,
        "unauthenticated",
        "Send a live API key as 'Authorization: Bearer <key>'.",
        headers={"WWW-Authenticate": 'Bearer realm="academy-sync"'},
    )


def problem(request, exc: Problem):
    return problems.of(exc)


def progression_problem(request, exc: ProgressionError):
    field = getattr(exc, "field", None)
    if field is None and isinstance(exc, UnknownSpecialization):
        field = "specialization"
    errors = [{"field": field or "body", "value": shown(getattr(exc, "value", None)),
               "message": str(exc)}]  # fmt: skip
    return problems.response(422, "validation", str(exc), errors=errors)


def idempotency_conflict(request, exc: IdempotencyConflict):
    return problems.response(
        409,
        "idempotency-conflict",
        f"Idempotency-Key={exc.key!r} was already used by this client for another event;"
        " send a new key for a new event",
    )


def server_error(request, exc: Exception):
    logger.exception("API request %s %s failed", request.method, request.path)
    return problems.response(500, "server-error", "The server failed; nothing was written.")


HANDLERS = {
    ValidationError: validation_problem,
    HttpError: http_problem,
    AuthenticationError: unauthenticated,
    Problem: problem,
    IdempotencyConflict: idempotency_conflict,
    ProgressionError: progression_problem,
    Exception: server_error,
}

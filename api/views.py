"""/api/v1/: the NinjaAPI, its endpoints and their documented answers."""

import json

from django.http import HttpResponse
from ninja import Header, NinjaAPI, Router, Status
from ninja.errors import ValidationError
from ninja.openapi.docs import Swagger

from specializations.selectors import MAX_ID

from . import events, problems, reads
from .auth import ClientKey
from .errors import HANDLERS
from .schemas import (
    MAX_KEY_LENGTH,
    TOKEN_PATTERN,
    BatchIn,
    BatchOut,
    CatalogueOut,
    EventIn,
    EventOut,
    ProblemOut,
    StudentProgressOut,
)
from .students import resolve

DESCRIPTION = """\
Progress in, progress out, for the academy's other systems. Every request carries an
API key (`Authorization: Bearer <key>`, from `manage.py create_api_key`); every error is
`application/problem+json` (RFC 9457). See docs/api.md.
"""


class Api(NinjaAPI):
    def validation_error_from_error_contexts(self, error_contexts) -> ValidationError:
        """ninja's own, keeping each error's input: a refusal names the value it refused."""
        errors = []
        for context in error_contexts:
            model = context.model
            for error in context.pydantic_validation_error.errors(include_url=False):
                error["loc"] = (model.__ninja_param_source__,) + (
                    model.__ninja_flatten_map_reverse__.get(error["loc"], error["loc"])
                )
                error.pop("ctx", None)
                errors.append(dict(error))
        return ValidationError(errors)

    def get_openapi_schema(self, *args, **kwargs):
        """ninja's schema, with every error documented as the problem+json it is."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, answer in operation["responses"].items():
                    if int(status) >= 400 and "application/json" in answer.get("content", {}):
                        answer["content"] = {
                            problems.CONTENT_TYPE: answer["content"]["application/json"]
                        }
                    if int(status) == 429:
                        answer["headers"] = {"Retry-After": RETRY_AFTER}
        return schema


api = Api(
    title="Academy progress API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    # validatorUrl None: Swagger UI would otherwise load a badge from swagger.io.
    docs=Swagger(settings={"persistAuthorization": False, "validatorUrl": None}),
)
for exception, handler in HANDLERS.items():
    api.add_exception_handler(exception, handler)

PROBLEMS = {code: ProblemOut for code in (400, 401, 403, 404, 409, 411, 413, 422, 429)}

REPLAYED = "Idempotent-Replayed"
REPLAYED_HEADER = {
    "description": "`true`: the first answer to this key, given again; nothing was applied.",
    "schema": {"type": "string", "enum": ["true"]},
}
RETRY_AFTER = {
    "description": "Seconds until the client's rate limit lets a request through.",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
IdempotencyKey = Header(
    alias="Idempotency-Key",
    min_length=1,
    max_length=MAX_KEY_LENGTH,
    pattern=TOKEN_PATTERN,
    description="One per event, chosen by the sender (a UUID): a retry sends the same key.",
)

sending = Router(tags=["events"])


@sending.post(
    "/events",
    response={201: EventOut, 200: EventOut, **PROBLEMS},
    auth=ClientKey("events:write"),
    summary="Send one event (exactly once per Idempotency-Key)",
    description="201: applied. 200 with `Idempotent-Replayed: true`: this key was seen"
    " with this event before, and this is the first answer again. 409: the key was used"
    " for another event.",
    openapi_extra={"responses": {200: {"headers": {REPLAYED: REPLAYED_HEADER}}}},
)
def send_event(request, response: HttpResponse, payload: EventIn, key: str = IdempotencyKey):
    outcome = events.send(request.auth, payload, key=key)
    if outcome.replayed:
        response[REPLAYED] = "true"
        return Status(200, outcome.body)
    return Status(201, outcome.body)


@sending.post(
    "/events/batch",
    response={200: BatchOut, **PROBLEMS},
    auth=ClientKey("events:write"),
    summary="Send up to API_MAX_BATCH_EVENTS events, all or nothing",
    description="Each event carries its own `key`. One bad event refuses the batch (422,"
    " every bad item listed by index and field) and nothing is applied; an event whose"
    " key was seen before with the same content is reported as `replayed`.",
)
def send_batch(request, payload: BatchIn):
    if too_many := events.over_limit(len(payload.events)):
        raise too_many
    outcomes = events.send_batch(request.auth, payload.events)
    items = [
        {"index": index, "key": key, "status": "replayed" if outcome.replayed else "applied",
         "event": outcome.body}
        for index, (key, outcome) in enumerate(outcomes)
    ]  # fmt: skip
    replayed = sum(item["status"] == "replayed" for item in items)
    answer = {"applied": len(items) - replayed, "replayed": replayed, "items": items}
    # Written here, not validated again against BatchOut: its 3,000 nested objects, just
    # built by the code whose single answers are validated, cost 6 ms of a batch's Python
    # (BENCHMARKS.md, "The HTTP API"); tests hold the shape to the schema.
    return HttpResponse(json.dumps(answer), content_type="application/json; charset=utf-8")


reading = Router(tags=["reads"])


@reading.get(
    "/students/{int:student_id}/progress",
    response={200: StudentProgressOut, **PROBLEMS},
    auth=ClientKey("progress:read"),
    summary="A student's progress by user id",
)
def progress_by_id(request, student_id: int):
    # Past a 64-bit id there is nobody to read (and SQLite could not compare it).
    specializations = reads.student_progress(student_id) if student_id <= MAX_ID else []
    if not specializations:  # nobody, or a student in no specialization yet
        resolve(request.auth, student_id=student_id)
    return {"student_id": student_id, "external_id": None, "specializations": specializations}


@reading.get(
    "/students/external/{external_id}/progress",
    response={200: StudentProgressOut, **PROBLEMS},
    auth=ClientKey("progress:read"),
    summary="A student's progress by the external id the client knows",
)
def progress_by_external_id(request, external_id: str):
    student = resolve(request.auth, external_id=external_id)
    return {**student.as_dict(), "specializations": reads.student_progress(student.user_id)}


@reading.get(
    "/catalogue",
    response={200: CatalogueOut, **PROBLEMS},
    auth=ClientKey("catalogue:read"),
    summary="Specializations and their levels",
)
def catalogue(request):
    return {"specializations": reads.catalogue()}


api.add_router("", sending)
api.add_router("", reading)


def not_found(request):
    """Every other path under /api/."""
    return problems.response(
        404, "not-found", f"There is no {request.path!r} in this API (see /api/v1/docs)."
    )

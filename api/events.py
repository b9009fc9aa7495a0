"""Events sent over HTTP, applied through the ledger (``update_progress``) exactly once.

Idempotency follows the IETF Idempotency-Key draft and Stripe: the first request with a
key is applied and its answer recorded (``IdempotentRequest``, same transaction); the
same key with the same event gets that answer again (a replay); with another event, a
409. The ledger's unique (source, key) index settles two requests sent at once: the
second waits for the first's commit and becomes its replay.
"""

import hashlib
import json
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from licenses.models import UserLicense
from specializations.catalogue import get_specialization
from specializations.exceptions import ProgressionError
from specializations.services import update_progress

from .models import IdempotentRequest
from .problems import Problem
from .schemas import EventIn, EventOut
from .students import resolve

IDEMPOTENCY_CONFLICT = (
    "Idempotency-Key={key!r} was already used by this client for another event;"
    " send a new key for a new event"
)


@dataclass(frozen=True, slots=True)
class Outcome:
    body: dict
    replayed: bool


def fingerprint(event: EventIn) -> str:
    """The event as validated (defaults filled in, the batch's key left out), hashed."""
    data = event.model_dump(mode="json", exclude={"key"})
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotentRequest, *, key: str, fingerprint: str) -> Outcome:
    if record.fingerprint != fingerprint:
        raise Problem(409, "idempotency-conflict", IDEMPOTENCY_CONFLICT.format(key=key))
    return Outcome(body=record.response, replayed=True)


def _body(update, student, event: EventIn) -> dict:
    progress = update.progress
    licence_level = (
        UserLicense.objects.filter(
            user_id=progress.student_id, specialization_id=progress.specialization_id
        )
        .values_list("current_level", flat=True)
        .first()
    )
    body = {
        "event_id": update.event.pk,
        "student_id": progress.student_id,
        "external_id": student.external_id,
        "specialization": progress.specialization_id,
        "level_before": update.old_level,
        "level_after": update.new_level,
        "levels_gained": update.levels_gained,
        "totals": {
            "xp": progress.total_xp,
            "sessions": progress.completed_sessions,
            "projects": progress.completed_projects,
            "theory_hours": progress.theory_hours_completed,
            "practice_hours": progress.practice_hours_completed,
        },
        "licence_level": licence_level,
        "occurred_at": update.event.occurred_at,
    }
    # The JSON form, as stored: a replay answers with exactly these bytes' content.
    return EventOut.model_validate(body).model_dump(mode="json")


def apply(client, event: EventIn, *, key: str, fingerprint: str, student=None) -> Outcome:
    """Apply one event (inside the caller's transaction) or replay its first answer."""
    record = IdempotentRequest.objects.filter(client=client, key=key).first()
    if record is not None:
        return _replay(record, key=key, fingerprint=fingerprint)
    if student is None:
        student = resolve(client, student_id=event.student_id, external_id=event.external_id)
    update = update_progress(
        student.user,
        event.specialization,
        xp_gained=event.xp,
        sessions_completed=event.sessions,
        projects_completed=event.projects,
        theory_hours=event.theory_hours,
        practice_hours=event.practice_hours,
        idempotency_key=key,
        source=client.name,
        reason=event.reason,
        occurred_at=event.occurred_at,
    )
    if update.replayed:
        # Another request with this key committed first (we waited for it in the ledger).
        record = IdempotentRequest.objects.filter(client=client, key=key).first()
        if record is None:  # the key was used under this source outside the API
            raise Problem(409, "idempotency-conflict", IDEMPOTENCY_CONFLICT.format(key=key))
        return _replay(record, key=key, fingerprint=fingerprint)
    body = _body(update, student, event)
    IdempotentRequest.objects.create(client=client, key=key, fingerprint=fingerprint, response=body)
    return Outcome(body=body, replayed=False)


def send(client, event: EventIn, *, key: str) -> Outcome:
    with transaction.atomic():
        return apply(client, event, key=key, fingerprint=fingerprint(event))


def send_batch(client, events) -> list[tuple[str, Outcome]]:
    """All or nothing: every event checked first (a 422 lists each bad one by index and
    field), then applied in one transaction; a key seen before is a replay."""
    errors = []
    prints = [fingerprint(event) for event in events]
    first_index: dict[str, int] = {}
    for index, event in enumerate(events):
        earlier = first_index.setdefault(event.key, index)
        if earlier != index and prints[earlier] != prints[index]:
            errors.append(
                {"index": index, "field": f"events.{index}.key", "value": event.key,
                 "message": f"the key of events.{earlier} with another event"}
            )  # fmt: skip
    for index, event in enumerate(events):
        try:
            get_specialization(event.specialization)
        except ProgressionError as error:
            errors.append(
                {"index": index, "field": f"events.{index}.specialization",
                 "value": event.specialization, "message": str(error)}
            )  # fmt: skip
    students = _students(client, events, errors)
    if errors:
        raise Problem(
            422,
            "validation",
            f"{len(errors)} of {len(events)} events refused; nothing was applied.",
            errors=sorted(errors, key=lambda error: error["index"]),
        )
    outcomes = []
    with transaction.atomic():
        for index, event in enumerate(events):
            try:
                outcome = apply(
                    client, event, key=event.key, fingerprint=prints[index],
                    student=students[index],
                )  # fmt: skip
            except (Problem, ProgressionError) as error:
                # Refused while applying (the whole batch is rolled back): say which item.
                raise Problem(
                    getattr(error, "status", 422),
                    getattr(error, "slug", "validation"),
                    f"events.{index}: {getattr(error, 'detail', error)}; nothing was applied.",
                    errors=[{"index": index, "field": f"events.{index}."
                             + getattr(error, "field", "key"), "value": None,
                             "message": str(error)}],
                ) from error  # fmt: skip
            outcomes.append((event.key, outcome))
    return outcomes


def _students(client, events, errors) -> list:
    """Each event's student, resolved in two queries (ids, external ids); unknown ones
    are added to ``errors``."""
    from specializations.models import ExternalId

    from .students import Student

    User = get_user_model()
    ids = {event.student_id for event in events if event.student_id is not None}
    externals = {event.external_id for event in events if event.external_id is not None}
    users = User._default_manager.in_bulk(ids) if ids else {}
    links = {
        link.external_id: link.user
        for link in ExternalId.objects.select_related("user").filter(
            source=client.namespace, external_id__in=externals
        )
    } if externals else {}  # fmt: skip
    students = []
    for index, event in enumerate(events):
        if event.student_id is not None:
            user, field, value = users.get(event.student_id), "student_id", event.student_id
        else:
            user, field, value = links.get(event.external_id), "external_id", event.external_id
        if user is None:
            errors.append(
                {"index": index, "field": f"events.{index}.{field}", "value": value,
                 "message": f"{field}={value!r} is not a known student"
                 + (f" in the namespace {client.namespace!r}" if field == "external_id" else "")}
            )  # fmt: skip
        students.append(user and Student(user=user, external_id=event.external_id))
    return students

"""Events sent over HTTP, applied through the ledger exactly once.

Idempotency follows the IETF Idempotency-Key draft and Stripe: the first request with a
key is applied and its answer recorded (``IdempotentRequest``, same transaction); the
same key with the same event gets that answer again (a replay); with another event, a
409. The ledger's unique (source, key) index decides which request is first: a key it
already holds comes back from ``update_progress`` as a replay (or a conflict), and only
then is the recorded answer read. Two requests sent at once: the second waits for the
first's commit and becomes its replay.
"""

import hashlib
import json
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from pydantic import ValidationError as PydanticValidationError

from common.bulk_sql import exact_pairs, insert_rows, quoted
from licenses.models import UserLicense
from specializations.bulk import EventSpec, update_progress_many
from specializations.catalogue import get_specialization
from specializations.exceptions import IdempotencyConflict, ProgressionError, UnknownUser
from specializations.services import update_progress

from . import conf
from .models import IdempotentRequest
from .problems import Problem
from .schemas import BatchEventIn, EventIn
from .students import UNKNOWN_STUDENT, Student, UserRef, resolve

IDEMPOTENCY_CONFLICT = (
    "Idempotency-Key={key!r} was already used by this client for another event;"
    " send a new key for a new event"
)
BATCH_RACE = (
    "a key of this batch was applied by another request meanwhile; nothing of this batch"
    " was applied: send it again (its applied keys come back as replays)"
)


@dataclass(frozen=True, slots=True)
class Outcome:
    body: dict
    replayed: bool


# json.dumps(sort_keys=True, separators=(",", ":")), made once, not once per event.
CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def fingerprint(event: EventIn) -> str:
    """The event as validated (defaults filled in, the batch's key left out), hashed."""
    data = event.model_dump(mode="json", exclude={"key"})
    return hashlib.sha256(CANONICAL.encode(data).encode()).hexdigest()


def amounts(event: EventIn) -> dict[str, int]:
    return {
        "xp_gained": event.xp,
        "sessions_completed": event.sessions,
        "projects_completed": event.projects,
        "theory_hours": event.theory_hours,
        "practice_hours": event.practice_hours,
    }


def _conflict(key: str) -> Problem:
    return Problem(409, "idempotency-conflict", IDEMPOTENCY_CONFLICT.format(key=key))


def _replay(record: IdempotentRequest | None, *, key: str, fingerprint: str) -> Outcome:
    # No record: the key was used under this client's name outside the API.
    if record is None or record.fingerprint != fingerprint:
        raise _conflict(key)
    return Outcome(body=record.response, replayed=True)


def body_of(update, *, external_id: str | None, licence_level: int | None) -> dict:
    """The answer for one applied event (an EventOut), in its JSON form (what is stored
    for a replay; the response schema validates it on the way out)."""
    progress = update.progress
    body = {
        "event_id": update.event.pk,
        "student_id": progress.student_id,
        "external_id": external_id,
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
    }
    body["occurred_at"] = update.event.occurred_at.isoformat()
    return body


def _student(client, event: EventIn) -> Student:
    if event.student_id is not None:
        # By id, no lookup: the ledger's lock finds the row, and only a student without
        # one is looked for (UnknownUser below).
        return Student(user=UserRef(event.student_id), external_id=None)
    return resolve(client, external_id=event.external_id)


def send(client, event: EventIn, *, key: str) -> Outcome:
    """Apply one event and record its answer in the ledger's transaction, or replay the
    first answer."""
    prints = fingerprint(event)
    student = _student(client, event)
    answer = {}

    def record(update) -> None:
        body = body_of(update, external_id=student.external_id, licence_level=None)
        body["licence_level"] = _record(client, key=key, fingerprint=prints, body=body)
        answer.update(body)

    try:
        update = update_progress(
            student.user, event.specialization, **amounts(event), idempotency_key=key,
            source=client.name, reason=event.reason, occurred_at=event.occurred_at, also=record,
        )  # fmt: skip
    except UnknownUser as error:
        detail = f"student_id={event.student_id!r} is not a student"
        raise Problem(404, UNKNOWN_STUDENT, detail) from error
    except IdempotencyConflict as error:
        raise _conflict(key) from error
    if update.replayed:
        recorded = IdempotentRequest.objects.filter(client=client, key=key).first()
        return _replay(recorded, key=key, fingerprint=prints)
    return Outcome(body=answer, replayed=False)


def _record(client, *, key: str, fingerprint: str, body: dict) -> int | None:
    """Store the answer to (client, key) with its pair's licence level, read in the same
    statement (the licence cannot move meanwhile: the progress row is locked); returns
    that level. One round trip instead of a read and an insert."""
    quote = connection.ops.quote_name
    licences = UserLicense._meta
    level = (
        f"(SELECT {quote(licences.get_field('current_level').column)} FROM"
        f" {quote(licences.db_table)} WHERE {quote(licences.get_field('user').column)} = %s"
        f" AND {quote(licences.get_field('specialization').column)} = %s)"
    )
    if connection.vendor == "postgresql":
        response = f"%s::jsonb || jsonb_build_object('licence_level', {level})"
        returned = "(response ->> 'licence_level')::integer"
    else:
        response = f"json_set(%s, '$.licence_level', {level})"
        returned = "json_extract(response, '$.licence_level')"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(IdempotentRequest._meta.db_table)}"
            f" (client_id, key, fingerprint, response) SELECT %s, %s, %s, {response}"
            f" RETURNING {returned}",
            [client.pk, key, fingerprint, json.dumps(body), body["student_id"],
             body["specialization"]],
        )  # fmt: skip
        return cursor.fetchone()[0]


def send_batch(client, events) -> list[tuple[str, Outcome]]:
    """All or nothing: every event checked first (a 422 lists each bad one by index and
    field), then applied set-based in one transaction. A key seen before (earlier, or
    earlier in the batch) with the same event is a replay; with another, a 409 that
    applies nothing. The ledger finds the earlier keys; their recorded answers are read
    only for those (a batch of new keys reads none)."""
    checked = _check(client, events, range(len(events)))
    if checked.errors:
        raise refusal(checked.errors, len(events))
    prints, first_index, students = checked.prints, checked.first_index, checked.students
    firsts = [index for index, event in enumerate(events) if first_index[event.key] == index]
    outcomes: dict[int, Outcome] = {}
    try:
        with transaction.atomic():
            updates = update_progress_many(
                [EventSpec(student_id=students[i].user_id, specialization=events[i].specialization,
                           amounts=amounts(events[i]), idempotency_key=events[i].key,
                           reason=events[i].reason, occurred_at=events[i].occurred_at)
                 for i in firsts],
                source=client.name,
            )  # fmt: skip
            applied = [(i, u) for i, u in zip(firsts, updates, strict=True) if not u.replayed]
            replayed = [i for i, u in zip(firsts, updates, strict=True) if u.replayed]
            outcomes.update(_replays(client, events, prints, replayed))
            levels = _licence_levels([update for _, update in applied])
            for index, update in applied:
                pair = (update.progress.student_id, update.progress.specialization_id)
                body = body_of(update, external_id=students[index].external_id,
                               licence_level=levels.get(pair))  # fmt: skip
                outcomes[index] = Outcome(body=body, replayed=False)
            insert_rows(
                IdempotentRequest, ["client_id", "key", "fingerprint", "response"],
                [(client.pk, events[index].key, prints[index], outcomes[index].body)
                 for index, _ in applied],
            )  # fmt: skip
    except IntegrityError as error:
        raise Problem(409, "idempotency-conflict", BATCH_RACE) from error
    except IdempotencyConflict as error:
        index = first_index[error.key]
        raise Problem(409, "idempotency-conflict", IDEMPOTENCY_CONFLICT.format(key=error.key),
                      errors=[_conflict_item(index, error.key)]) from error  # fmt: skip
    out = []
    for index, event in enumerate(events):
        first = outcomes[first_index[event.key]]
        replay = first.replayed or first_index[event.key] != index
        out.append((event.key, Outcome(body=first.body, replayed=replay)))
    return out


@dataclass(frozen=True, slots=True)
class _Checked:
    errors: list[dict]
    prints: list[str]
    first_index: dict[str, int]  # each key's first event, by its place in ``events``
    students: list[Student | None]


def _check(client, events, at) -> _Checked:
    """What the batch's schema cannot see, for ``events`` (sent as the batch's items
    ``at``): a key reused for another event, an unknown specialization or student."""
    errors = []
    prints = [fingerprint(event) for event in events]
    first_index: dict[str, int] = {}
    unknown = _unknown_specializations({event.specialization for event in events})
    for place, event in enumerate(events):
        earlier, index = first_index.setdefault(event.key, place), at[place]
        if earlier != place and prints[earlier] != prints[place]:
            errors.append(
                {"index": index, "field": f"events.{index}.key", "value": event.key,
                 "message": f"the key of events.{at[earlier]} with another event"}
            )  # fmt: skip
        if event.specialization in unknown:
            errors.append(
                {"index": index, "field": f"events.{index}.specialization",
                 "value": event.specialization, "message": unknown[event.specialization]}
            )  # fmt: skip
    students = _students(client, events, errors, at)
    return _Checked(errors, prints, first_index, students)


def over_limit(count: int) -> Problem | None:
    """The 422 of a batch of more events than API_MAX_BATCH_EVENTS, or None."""
    limit = conf.get("API_MAX_BATCH_EVENTS")
    if count <= limit:
        return None
    return Problem(
        422,
        "validation",
        f"events: {count} events, more than the {limit} a batch may hold.",
        errors=[{"field": "events", "value": count, "message": f"at most {limit} events"}],
    )


def refusal_beside(client, body: bytes, errors: list[dict]) -> Problem:
    """For a batch whose events the schema refused (``errors``): the 422 that lists them
    with the refusals its other, well-formed events get, so that one answer lists every
    bad item. Only on this path are events validated one by one (at most a batch's
    limit of them: a longer batch is refused for its length first)."""
    items = json.loads(body)["events"]  # the schema found a list of events in it
    if too_many := over_limit(len(items)):
        return too_many
    refused = {error.get("index") for error in errors}
    events, at = [], []
    for index, item in enumerate(items):
        if index in refused:
            continue
        try:
            events.append(BatchEventIn.model_validate(item))
        except PydanticValidationError:
            continue
        at.append(index)
    beside = _check(client, events, at).errors if events else []
    return refusal(errors + beside, len(items))


def _unknown_specializations(codes) -> dict[str, str]:
    """The codes the catalogue refuses, with why (one catalogue read per code)."""
    unknown = {}
    for code in codes:
        try:
            get_specialization(code)
        except ProgressionError as error:
            unknown[code] = str(error)
    return unknown


def _conflict_item(index: int, key: str) -> dict:
    return {"index": index, "field": f"events.{index}.key", "value": key,
            "message": IDEMPOTENCY_CONFLICT.format(key=key)}  # fmt: skip


def _replays(client, events, prints, indexes) -> dict[int, Outcome]:
    """The recorded answers of the batch's keys the ledger already held (one query, none
    when there are none); a 409 listing every key used for another event, or outside the
    API under this client's name (no answer recorded)."""
    if not indexes:
        return {}
    keys = [events[index].key for index in indexes]
    records = {r.key: r for r in IdempotentRequest.objects.filter(client=client, key__in=keys)}
    conflicts = [
        _conflict_item(index, events[index].key)
        for index in indexes
        if (record := records.get(events[index].key)) is None or record.fingerprint != prints[index]
    ]
    if conflicts:
        raise Problem(409, "idempotency-conflict", conflicts[0]["message"], errors=conflicts)
    return {
        index: Outcome(body=records[events[index].key].response, replayed=True) for index in indexes
    }


def refusal(errors: list[dict], count: int) -> Problem:
    """The 422 of a batch with bad events: every one listed, by index."""
    refused = {error.get("index") for error in errors}
    return Problem(
        422,
        "validation",
        f"{len(refused)} of {count} events refused; nothing was applied.",
        errors=sorted(errors, key=lambda error: error.get("index", -1)),
    )


def _licence_levels(updates) -> dict[tuple[int, str], int]:
    """The licence level of every pair the batch touched (one query)."""
    pairs = sorted({(u.progress.student_id, u.progress.specialization_id) for u in updates})
    if not pairs:
        return {}
    table = quoted(UserLicense)
    where, params = exact_pairs(table, "user_id", pairs)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT user_id, specialization_id, current_level FROM {table} WHERE {where}",
            params,
        )
        return {(user, code): level for user, code, level in cursor.fetchall()}


def _students(client, events, errors, at) -> list[Student | None]:
    """Each event's student, resolved in two queries (ids, external ids); unknown ones
    are added to ``errors`` (by their place in the batch, ``at``)."""
    from specializations.models import ExternalId

    User = get_user_model()
    ids = {event.student_id for event in events if event.student_id is not None}
    externals = {event.external_id for event in events if event.external_id is not None}
    known_ids = set(User._default_manager.filter(pk__in=ids).values_list("pk", flat=True))
    links = dict(
        ExternalId.objects.filter(source=client.namespace, external_id__in=externals)
        .values_list("external_id", "user_id")
    ) if externals else {}  # fmt: skip
    students = []
    for index, event in zip(at, events, strict=True):
        if event.student_id is not None:
            user_id = event.student_id if event.student_id in known_ids else None
            field, value = "student_id", event.student_id
        else:
            user_id, field, value = links.get(event.external_id), "external_id", event.external_id
        if user_id is None:
            errors.append(
                {"index": index, "field": f"events.{index}.{field}", "value": value,
                 "message": f"{field}={value!r} is not a known student"
                 + (f" in the namespace {client.namespace!r}" if field == "external_id" else "")}
            )  # fmt: skip
            students.append(None)
        else:
            students.append(Student(user=UserRef(user_id), external_id=event.external_id))
    return students

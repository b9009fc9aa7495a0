"""Writes of the progression domain: enrolment and earning progress.

The licence follows every progress change through the auto-sync receiver in
``licenses/signals.py``, inside the transaction opened here.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from .catalogue import SpecializationInfo, get_specialization
from .exceptions import (
    AMOUNT_OUT_OF_RANGE,
    ExternalIdTaken,
    IdempotencyConflict,
    InvalidAmount,
    InvalidLedgerValue,
    InvalidReason,
    NegativeAmount,
    ReasonHasControlCharacter,
    UnknownUser,
)
from .models import LEDGER_FIELDS, ExternalId, ProgressEvent, SpecializationProgress

SYSTEM_SOURCE = "system"
ADMIN_SOURCE = "admin"
OPENING_SOURCE = "opening"  # migration 0003's events: no caller may send it
REASON_MAX_LENGTH = 255  # ProgressEvent.reason and LicenseProgression.reason
KEY_MAX_LENGTH = 255  # ProgressEvent.idempotency_key


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """``new_level`` is the level the progress row ended at: the levels these
    amounts earned, or, when its licence was ahead, the licence's level (the
    auto-sync hook raises a lagging progress row).

    ``replayed``: the call repeated an earlier (source, idempotency_key) with the
    same amounts; nothing was written, and ``old_level``/``new_level``/``event``
    are the first call's (``progress`` is the row as it is now).
    """

    progress: SpecializationProgress
    old_level: int
    new_level: int
    replayed: bool = False
    event: ProgressEvent | None = None

    @property
    def levels_gained(self) -> int:
        return self.new_level - self.old_level


_LINE_BREAKS = re.compile(r"[ \t\r\n]*[\t\r\n][ \t\r\n]*")
# Unicode's control characters (category Cc: U+0000-U+001F and U+007F-U+009F), found in
# one scan in C instead of a category lookup per character (every key of a batch), and
# lone surrogates (U+D800-U+DFFF: halves of a pair that JSON's \u escapes can send
# alone; no UTF-8 can hold one, so neither database can store it).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def require_reason(reason: str | None, *, max_length: int = REASON_MAX_LENGTH) -> str:
    """The audit reason as one line: stripped, tabs and line breaks folded into one space.

    Every other control character (NUL first: PostgreSQL cannot store it) is
    refused, as is a reason that would not fit its column. Shared by every
    service that takes a reason (the licence history's and the ledger's).
    """
    reason = _LINE_BREAKS.sub(" ", reason or "")
    if control := _CONTROL.search(reason):
        raise ReasonHasControlCharacter(reason, position=control.start())
    reason = reason.strip()
    if len(reason) > max_length:
        raise InvalidReason(reason, max_length=max_length)
    return reason


def require_saved_user(user, *, field: str = "student") -> None:
    """Refuse an unsaved user object; cheap, no query."""
    if getattr(user, "pk", None) is None:
        raise UnknownUser(user, field=field)


def require_existing_user(user, *, field: str) -> None:
    """A saved user whose row still exists (one query): a clear error, not a foreign-key one."""
    require_saved_user(user, field=field)
    if not get_user_model()._default_manager.filter(pk=user.pk).exists():
        raise UnknownUser(user, field=field)


# One call's amount, either way: beyond it a sender has a bug (or a unit mix-up), and the
# error names it before any column (32-bit hours and sessions) would overflow.
AMOUNT_LIMIT = 2**31 - 1


def require_amount(field: str, value) -> int:
    """A whole number within AMOUNT_LIMIT either way: a negative one is a correction,
    refused only where it would take a total below 0 (``add_amounts``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount(field, value)
    if abs(value) > AMOUNT_LIMIT:
        raise InvalidAmount(field, value, AMOUNT_OUT_OF_RANGE, limit=AMOUNT_LIMIT)
    return value


def lock_progress(student, specialization: str, *, enrol: bool) -> SpecializationProgress | None:
    """The progress row, locked FOR UPDATE; with ``enrol`` a missing row is created (level 1).

    Must run inside a transaction. A concurrent enrolment of the same pair is
    settled by the unique constraint: the loser waits for the winner's row and
    locks it.
    """
    progress = _locked_row(student.pk, specialization)
    if progress is not None or not enrol:
        return progress
    if not get_user_model()._default_manager.filter(pk=student.pk).exists():
        raise UnknownUser(student)
    try:
        with transaction.atomic():
            return SpecializationProgress.objects.create(
                student_id=student.pk, specialization_id=specialization
            )
    except IntegrityError:
        progress = _locked_row(student.pk, specialization)
        if progress is None:  # not a lost race: a real constraint violation
            raise
        return progress


def _locked_row(student_id: int, specialization: str) -> SpecializationProgress | None:
    """The pair's progress row, locked FOR UPDATE (where the database has row locks).

    Written as SQL: the ORM took longer to build this query than the database to
    run it, on the path of every event (BENCHMARKS.md, "The HTTP API").
    """
    meta = SpecializationProgress._meta
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    rows = SpecializationProgress.objects.raw(
        f"SELECT * FROM {connection.ops.quote_name(meta.db_table)}"
        f" WHERE {meta.get_field('student').column} = %s"
        f" AND {meta.get_field('specialization').column} = %s{lock}",
        [student_id, specialization],
    )
    return next(iter(rows), None)


def enroll(student, specialization: str) -> SpecializationProgress:
    """Enrol ``student`` (idempotent): progress at level 1 and, through the hook, a licence."""
    info = get_specialization(specialization)
    require_saved_user(student)
    with transaction.atomic():
        return lock_progress(student, info.code, enrol=True)


def _require_name(field: str, value, *, max_length: int) -> str:
    """A source or an idempotency key: text of 1..max_length characters, no control characters."""
    if not isinstance(value, str):
        raise InvalidLedgerValue(field, value, "must be a string")
    if not value or value != value.strip():
        raise InvalidLedgerValue(field, value, "must not be empty or start or end with a space")
    if len(value) > max_length:
        raise InvalidLedgerValue(field, value, f"is longer than {max_length} characters")
    if control := _CONTROL.search(value):
        raise InvalidLedgerValue(
            field, value, f"contains the control character U+{ord(control.group()):04X}"
        )
    return value


def require_source(source) -> str:
    source = _require_name("source", source, max_length=100)
    if source == OPENING_SOURCE:
        raise InvalidLedgerValue("source", source, "is reserved for the ledger's opening events")
    return source


def require_idempotency_key(key) -> str | None:
    return None if key is None else _require_name("idempotency_key", key, max_length=KEY_MAX_LENGTH)


def require_occurred_at(value) -> datetime:
    if value is None:
        return timezone.now()
    if not isinstance(value, datetime):
        raise InvalidLedgerValue("occurred_at", value, "must be a datetime")
    if timezone.is_naive(value):
        raise InvalidLedgerValue("occurred_at", value, "must carry a time zone")
    try:
        value.astimezone(UTC)  # what the database stores (SQLite: UTC, naive)
    except OverflowError:
        raise InvalidLedgerValue("occurred_at", value, "is out of range in UTC") from None
    return value


def record_event(
    progress: SpecializationProgress,
    *,
    level_before: int,
    amounts: dict[str, int],
    source: str,
    idempotency_key: str | None = None,
    reason: str = "",
    actor=None,
    occurred_at: datetime | None = None,
) -> ProgressEvent:
    """Insert the ledger event of a change just applied to the locked ``progress`` row.

    For the services that change totals, inside their transaction (validated input).
    """
    return ProgressEvent.objects.create(
        progress=progress,
        source=source,
        idempotency_key=idempotency_key,
        reason=reason,
        actor=actor,
        occurred_at=occurred_at or timezone.now(),
        level_before=level_before,
        level_after=progress.current_level,
        **amounts,
    )


def update_progress(
    student,
    specialization: str,
    *,
    xp_gained: int = 0,
    sessions_completed: int = 0,
    projects_completed: int = 0,
    theory_hours: int = 0,
    practice_hours: int = 0,
    idempotency_key: str | None = None,
    source: str = SYSTEM_SOURCE,
    reason: str = "",
    occurred_at: datetime | None = None,
    actor=None,
    also=None,
) -> ProgressUpdate:
    """Add earned amounts, gain every level the new totals reach (never lose one) and
    record the change as one ledger event, in one transaction.

    ``also(update)``, when given, runs in that transaction once the event is written
    (not for a replay): what must commit or roll back with the event (the HTTP API's
    recorded answer), without a transaction around this call and its savepoint.

    Negative amounts are corrections: a total they would take below 0 is refused
    (``NegativeAmount`` naming the field) and they never lower a level. The same
    (``source``, ``idempotency_key``) again with the same student, specialization
    and amounts is a replay: nothing is written and the first outcome comes back
    with ``replayed=True``; with anything else it raises ``IdempotencyConflict``.
    Concurrent calls with one key are settled by the ledger's unique index.
    """
    info = get_specialization(specialization)
    require_saved_user(student)
    amounts = {
        "xp_gained": require_amount("xp_gained", xp_gained),
        "sessions_completed": require_amount("sessions_completed", sessions_completed),
        "projects_completed": require_amount("projects_completed", projects_completed),
        "theory_hours": require_amount("theory_hours", theory_hours),
        "practice_hours": require_amount("practice_hours", practice_hours),
    }
    source = require_source(source)
    idempotency_key = require_idempotency_key(idempotency_key)
    reason = require_reason(reason)
    occurred_at = require_occurred_at(occurred_at)
    if actor is not None:
        require_existing_user(actor, field="actor")

    try:
        with transaction.atomic():
            progress = lock_progress(student, info.code, enrol=True)
            old_level = progress.current_level
            fields = _apply(progress, info, amounts)
            event = ProgressEvent(
                progress=progress,
                source=source,
                idempotency_key=idempotency_key,
                reason=reason,
                actor=actor,
                occurred_at=occurred_at,
                level_before=old_level,
                **amounts,
            )
            _save_with_event(progress, fields, event)
            update = ProgressUpdate(
                progress=progress, old_level=old_level, new_level=progress.current_level,
                event=event,
            )  # fmt: skip
            if also is not None:
                also(update)
    except (IntegrityError, NegativeAmount):
        # The key's first event, committed meanwhile or long ago: a replay or a conflict.
        # (A correction replayed after the totals moved on must not read as too large.)
        first = _first_event(source, idempotency_key)
        if first is None:
            raise
        return _replay(first, student=student, specialization=info.code, amounts=amounts)
    return update


def add_amounts(progress: SpecializationProgress, info: SpecializationInfo, amounts, *, now) -> int:
    """Add ``amounts`` to the locked row in memory and gain the levels they reach (never
    lose one); a total below 0 is refused. Returns the level before. The one home of this
    arithmetic: ``update_progress`` and the batches (bulk.py) both use it."""
    old_level = progress.current_level
    for amount, total in LEDGER_FIELDS:
        value = getattr(progress, total) + amounts[amount]
        if value < 0:
            raise NegativeAmount(amount, amounts[amount], total=value)
        setattr(progress, total, value)
    progress.current_level = info.level_for(
        current=old_level,
        xp=progress.total_xp,
        sessions=progress.completed_sessions,
        projects=progress.completed_projects,
        theory=progress.theory_hours_completed,
        practice=progress.practice_hours_completed,
    )
    progress.last_activity = now
    return old_level


def _apply(progress: SpecializationProgress, info: SpecializationInfo, amounts) -> list[str]:
    """Add ``amounts`` to the locked row in memory; the fields to save."""
    old_level = add_amounts(progress, info, amounts, now=timezone.now())
    fields = [total for _, total in LEDGER_FIELDS] + ["last_activity"]
    if progress.current_level != old_level:
        fields.append("current_level")  # tells the auto-sync hook to move the licence
    return fields


def _save_with_event(progress: SpecializationProgress, fields: list[str], event) -> None:
    """Save the locked row's ``fields`` and insert its ledger ``event`` (level_after set here).

    A level change is saved through the ORM: its post_save is the auto-sync hook,
    which moves the licence (or raises a lagging row to its licence's level). A
    change of the totals alone needs no hook, and on PostgreSQL both writes go in
    one statement (a data-modifying WITH): the row lock is held one round trip
    less (BENCHMARKS.md, "The ledger's cost").
    """
    if "current_level" in fields or connection.vendor != "postgresql":
        progress.save(update_fields=fields)
        event.level_after = progress.current_level
        event.save(force_insert=True)
        return
    event.level_after = progress.current_level
    sets, params = [], []
    for name in fields:
        field = SpecializationProgress._meta.get_field(name)
        sets.append(f"{connection.ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(getattr(progress, field.attname), connection))
    params.append(progress.pk)
    generated = ("id", "recorded_at")  # by the database
    inserted = [f for f in ProgressEvent._meta.concrete_fields if f.name not in generated]
    params += [f.get_db_prep_save(getattr(event, f.attname), connection) for f in inserted]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH saved AS (UPDATE {quote(SpecializationProgress._meta.db_table)}"
            f" SET {', '.join(sets)} WHERE id = %s)"
            f" INSERT INTO {quote(ProgressEvent._meta.db_table)}"
            f" ({', '.join(quote(f.column) for f in inserted)})"
            f" VALUES ({', '.join(['%s'] * len(inserted))}) RETURNING id, recorded_at",
            params,
        )
        event.pk, event.recorded_at = cursor.fetchone()
    event._state.adding, event._state.db = False, connection.alias


def _first_event(source: str, idempotency_key: str | None) -> ProgressEvent | None:
    if idempotency_key is None:
        return None
    return (
        ProgressEvent.objects.select_related("progress")
        .filter(source=source, idempotency_key=idempotency_key)
        .first()
    )


def _replay(first: ProgressEvent, *, student, specialization: str, amounts) -> ProgressUpdate:
    same = (
        first.progress.student_id == student.pk
        and first.progress.specialization_id == specialization
        and first.amounts() == amounts
    )
    if not same:
        raise IdempotencyConflict(source=first.source, key=first.idempotency_key, event=first)
    return ProgressUpdate(
        progress=first.progress,
        old_level=first.level_before,
        new_level=first.level_after,
        replayed=True,
        event=first,
    )


def link_external_id(user, *, source: str, external_id: str) -> ExternalId:
    """Record that ``source`` knows ``user`` as ``external_id`` (idempotent).

    Raises ``ExternalIdTaken`` when that id already names another user; the
    unique constraint settles two links made at once.
    """
    require_existing_user(user, field="user")
    source = _require_name("source", source, max_length=100)
    external_id = _require_name("external_id", external_id, max_length=255)
    # get_or_create settles a race on the unique constraint (it reads the winner's row).
    link, _ = ExternalId.objects.get_or_create(
        source=source, external_id=external_id, defaults={"user_id": user.pk}
    )
    if link.user_id != user.pk:
        raise ExternalIdTaken(external_id, source=source, user=user.pk, other=link.user_id)
    return link

"""Many ledger events in one transaction, set-based: ``update_progress`` for a batch.

Each event has ``update_progress``'s meaning (amounts added in order, every level the
totals reach gained, never one lost, one ledger event each, the same replay and conflict
rules per (source, key)), at a fixed number of statements for the batch instead of
several per event: the rows locked in one query, in id order (two batches never
deadlock), the totals written in one UPDATE and the events in one INSERT. A row whose
level moves is saved on its own, so that the auto-sync hook moves its licence as it
does for ``update_progress``.
"""

import copy
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from .catalogue import get_specialization
from .exceptions import InvalidLedgerValue
from .models import LEDGER_FIELDS, ProgressEvent, SpecializationProgress
from .services import (
    ProgressUpdate,
    _replay,
    add_amounts,
    lock_progress,
    require_amount,
    require_idempotency_key,
    require_occurred_at,
    require_reason,
    require_source,
)

TOTALS = [total for _, total in LEDGER_FIELDS]


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event of a batch: ``amounts`` by update_progress's keyword names."""

    student_id: int
    specialization: str
    amounts: dict[str, int]
    idempotency_key: str | None = None
    reason: str = ""
    occurred_at: datetime | None = None


class _Student:
    """The user as the services need it: its primary key (no query)."""

    __slots__ = ("pk",)

    def __init__(self, pk: int):
        self.pk = pk


def update_progress_many(specs: list[EventSpec], *, source: str) -> list[ProgressUpdate]:
    """Apply ``specs`` in order, in one transaction; one ProgressUpdate per spec, whose
    ``progress`` is the row as that event left it. Raises what update_progress raises;
    a key given twice in one call is refused (``InvalidLedgerValue``)."""
    source = require_source(source)
    checked = [_checked(spec) for spec in specs]
    keys = [spec.idempotency_key for spec in checked if spec.idempotency_key is not None]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise InvalidLedgerValue("idempotency_key", twice, "is given twice in one batch")
    with transaction.atomic():
        first = {
            event.idempotency_key: event
            for event in ProgressEvent.objects.select_related("progress").filter(
                source=source, idempotency_key__in=keys
            )
        } if keys else {}  # fmt: skip
        rows = _lock_rows({(spec.student_id, spec.specialization) for spec in checked
                           if spec.idempotency_key not in first})  # fmt: skip
        start_levels = {pair: row.current_level for pair, row in rows.items()}
        now = timezone.now()
        updates, events = [], []
        for spec in checked:
            if spec.idempotency_key in first:
                updates.append(
                    _replay(first[spec.idempotency_key], student=_Student(spec.student_id),
                            specialization=spec.specialization, amounts=spec.amounts)
                )  # fmt: skip
                continue
            row = rows[(spec.student_id, spec.specialization)]
            old_level = _add(row, spec, now=now)
            event = ProgressEvent(
                progress=row, source=source, idempotency_key=spec.idempotency_key,
                reason=spec.reason, occurred_at=spec.occurred_at or now,
                level_before=old_level, level_after=row.current_level, **spec.amounts,
            )  # fmt: skip
            events.append(event)
            updates.append(ProgressUpdate(progress=copy.copy(row), old_level=old_level,
                                          new_level=row.current_level, event=event))  # fmt: skip
        moved = {pair for pair, row in rows.items() if row.current_level != start_levels[pair]}
        _write_totals([row for pair, row in rows.items() if pair not in moved], now=now)
        last_event = {(e.progress.student_id, e.progress.specialization_id): e for e in events}
        for pair in moved:  # the hook moves each licence (rare: a level gained)
            row = rows[pair]
            row.save(update_fields=[*TOTALS, "last_activity", "current_level"])
            # A licence found ahead raises the row (as in update_progress): its last event says so.
            last_event[pair].level_after = row.current_level
        ProgressEvent.objects.bulk_create(events)
    return updates


def _write_totals(rows: list[SpecializationProgress], *, now) -> None:
    """The rows' new totals in one UPDATE ... FROM a VALUES list (PostgreSQL and SQLite).

    Django's bulk_update builds one CASE per column with a branch per row: for a batch of
    1,000 rows its query building alone took most of the batch's time.
    """
    if not rows:
        return
    meta = SpecializationProgress._meta
    columns = [meta.get_field(name).column for name in TOTALS]
    table, pk = connection.ops.quote_name(meta.db_table), meta.pk.column
    width = len(columns) + 1
    values = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(rows))
    params = [value for row in rows for value in (row.pk, *(getattr(row, n) for n in TOTALS))]
    assignments = ", ".join(f"{column} = v.{column}" for column in columns)
    sql = (
        f"WITH v ({pk}, {', '.join(columns)}) AS (VALUES {values})"
        f" UPDATE {table} SET {assignments}, last_activity = %s"
        f" FROM v WHERE {table}.{pk} = v.{pk}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, connection.ops.adapt_datetimefield_value(now)])


def _checked(spec: EventSpec) -> EventSpec:
    get_specialization(spec.specialization)
    return EventSpec(
        student_id=spec.student_id,
        specialization=spec.specialization,
        amounts={
            name: require_amount(name, spec.amounts.get(name, 0), allow_negative=True)
            for name, _ in LEDGER_FIELDS
        },
        idempotency_key=require_idempotency_key(spec.idempotency_key),
        reason=require_reason(spec.reason),
        occurred_at=require_occurred_at(spec.occurred_at),
    )


def _lock_rows(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], SpecializationProgress]:
    """The progress rows of ``pairs``, locked in id order; missing ones enrolled (and
    locked) one by one. The query may lock a student's rows in other specializations
    too (students x specializations): harmless, and one statement."""
    if not pairs:
        return {}
    students = {student for student, _ in pairs}
    codes = {code for _, code in pairs}
    rows = {
        (row.student_id, row.specialization_id): row
        for row in SpecializationProgress.objects.select_for_update()
        .filter(student_id__in=students, specialization_id__in=codes)
        .order_by("pk")
    }
    for student, code in sorted(pairs - rows.keys()):
        rows[(student, code)] = lock_progress(_Student(student), code, enrol=True)
    return {pair: rows[pair] for pair in pairs}


def _add(row: SpecializationProgress, spec: EventSpec, *, now) -> int:
    """update_progress's arithmetic on the locked row in memory; the level before."""
    return add_amounts(row, get_specialization(spec.specialization), spec.amounts, now=now)

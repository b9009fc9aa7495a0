"""Many ledger events in one transaction, set-based: ``update_progress`` for a batch.

Each event has ``update_progress``'s meaning (amounts added in order, every level the
totals reach gained, never one lost, one ledger event each, the same replay and conflict
rules per (source, key)), at a fixed number of statements for the batch instead of
several per event: the earlier keys found in one query, exactly the batch's rows read in
one query, the events worked out, then the rows locked in one query, in id order (two
batches never deadlock), the totals written in one UPDATE and the events in one INSERT. A
row another transaction changed between the read and the lock is worked out again from
what it holds then. A row whose level moves is saved on its own, so that the auto-sync
hook moves its licence as it does for ``update_progress``.

Why the lock comes last: two batches sharing a student wait for each other's commit, and
at 1M pairs nearly every two batches of 1,000 random students share one; what a batch
does while holding its locks is what the other waits for (BENCHMARKS.md, "The HTTP API").
"""

import copy
import functools
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from common.bulk_sql import array, bulk_insert, bulk_set, exact_pairs, quoted

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
    # The catalogue once per specialization (each read checks its cache's age).
    infos = {code: get_specialization(code) for code in {spec.specialization for spec in specs}}
    checked = [_checked(spec) for spec in specs]
    keys = [spec.idempotency_key for spec in checked if spec.idempotency_key is not None]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise InvalidLedgerValue("idempotency_key", twice, "is given twice in one batch")
    with transaction.atomic():
        first = _first_events(source, keys)
        pairs = {(spec.student_id, spec.specialization) for spec in checked
                 if spec.idempotency_key not in first}  # fmt: skip
        rows = _read_rows(pairs)
        now = timezone.now()
        # By spec: its update, and its new event (None for a replay).
        updates: list = [None] * len(checked)
        events: list = [None] * len(checked)
        by_pair: dict[tuple[int, str], list[int]] = {}
        for index, spec in enumerate(checked):
            if spec.idempotency_key in first:
                updates[index] = _replay(
                    first[spec.idempotency_key], student=_Student(spec.student_id),
                    specialization=spec.specialization, amounts=spec.amounts,
                )  # fmt: skip
            else:
                by_pair.setdefault((spec.student_id, spec.specialization), []).append(index)
        start = {pair: _state(row) for pair, row in rows.items()}

        def work_out(pair):
            """The pair's events from its row as it stands, in the batch's order."""
            row = rows[pair]
            for index in by_pair[pair]:
                spec = checked[index]
                old_level = add_amounts(row, infos[spec.specialization], spec.amounts, now=now)
                events[index] = _new_event(
                    progress_id=row.pk, source=source, idempotency_key=spec.idempotency_key,
                    reason=spec.reason, occurred_at=spec.occurred_at or now,
                    level_before=old_level, level_after=row.current_level, **spec.amounts,
                )  # fmt: skip
                # A pair's last event gets the row itself; only its earlier ones a copy.
                progress = row if index == by_pair[pair][-1] else copy.copy(row)
                updates[index] = ProgressUpdate(progress=progress, old_level=old_level,
                                                new_level=row.current_level,
                                                event=events[index])  # fmt: skip

        for pair in rows:
            work_out(pair)
        changed = _lock_rows(rows, start)
        # After the locks in id order (as update_progress enrols): the pairs with no row.
        for student, code in sorted(pairs - rows.keys()):
            changed[(student, code)] = lock_progress(_Student(student), code, enrol=True)
        for pair, now_holds in changed.items():  # worked out (again) from what they hold
            rows[pair] = now_holds
            start[pair] = _state(now_holds)
            work_out(pair)
        events = [event for event in events if event is not None]
        moved = {pair for pair, row in rows.items() if row.current_level != start[pair][0]}
        bulk_set(
            SpecializationProgress,
            [*TOTALS, "last_activity"],
            [(row.pk, *(getattr(row, total) for total in TOTALS), now)
             for pair, row in rows.items() if pair not in moved],
        )  # fmt: skip
        for pair in moved:  # the hook moves each licence (rare: a level gained)
            row = rows[pair]
            row.save(update_fields=[*TOTALS, "last_activity", "current_level"])
            # A licence found ahead raises the row (as in update_progress): its last event
            # and update say so.
            index = by_pair[pair][-1]
            updates[index].event.level_after = row.current_level
            updates[index] = replace(updates[index], new_level=row.current_level)
        bulk_insert(events)
    return updates


def _first_events(source: str, keys: list[str]) -> dict[str, ProgressEvent]:
    """The ledger's events of these keys (usually none), by key.

    On PostgreSQL each key is one probe of the (source, key) index, whatever the
    statistics say: a long IN list, and then a plain join, were planned on a source's
    stale statistics (a client's first events, or no ANALYZE since) as a scan of all the
    source's events: a batch's cost grew with the client's history (73 ms at 159,000
    events against 2.4 ms of probes; BENCHMARKS.md, "The HTTP API"). A LATERAL subquery
    with a LIMIT is never flattened into a join, so the probes are the only plan.
    """
    if not keys:
        return {}
    events = ProgressEvent.objects.select_related("progress")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT e.id FROM unnest(%s::varchar[]) AS k(key) CROSS JOIN LATERAL"
                f" (SELECT id FROM {quoted(ProgressEvent)}"
                f" WHERE source = %s AND idempotency_key = k.key LIMIT 1) AS e",
                [array(keys), source],
            )
            found = [pk for (pk,) in cursor.fetchall()]
        if not found:
            return {}
        events = events.filter(pk__in=found)
    else:
        events = events.filter(source=source, idempotency_key__in=keys)
    return {event.idempotency_key: event for event in events}


def _new_event(**columns) -> ProgressEvent:
    """A new ledger event from its columns (the others at their defaults: no id yet, what
    the database fills in), through Model.__init__'s positional path: its per-keyword
    work cost twice as much, 1,000 times a batch (BENCHMARKS.md, "The HTTP API")."""
    return ProgressEvent(*[columns.get(name, default) for name, default in _event_columns()])


@functools.cache
def _event_columns() -> tuple[tuple[str, object], ...]:
    """ProgressEvent's columns in order, each with its default (all constants)."""
    return tuple((f.attname, f.get_default()) for f in ProgressEvent._meta.concrete_fields)


def _checked(spec: EventSpec) -> EventSpec:
    return EventSpec(
        student_id=spec.student_id,
        specialization=spec.specialization,
        amounts={
            name: require_amount(name, spec.amounts.get(name, 0)) for name, _ in LEDGER_FIELDS
        },
        idempotency_key=require_idempotency_key(spec.idempotency_key),
        reason=require_reason(spec.reason),
        occurred_at=require_occurred_at(spec.occurred_at),
    )


def _state(row: SpecializationProgress) -> tuple[int, ...]:
    """What the batch's arithmetic starts from: the level and the totals."""
    return (row.current_level, *(getattr(row, total) for total in TOTALS))


def _read_rows(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], SpecializationProgress]:
    """The progress rows of ``pairs`` that exist, read in one query (not locked: see
    ``_lock_rows``)."""
    if not pairs:
        return {}
    table = quoted(SpecializationProgress)
    where, params = exact_pairs(table, "student_id", sorted(pairs))
    fields = SpecializationProgress._meta.concrete_fields
    sql = (
        f"SELECT {', '.join(f'{table}.{connection.ops.quote_name(f.column)}' for f in fields)}"
        f" FROM {table} WHERE {where}"
    )
    if connection.vendor == "postgresql":
        # psycopg2 gives these columns as the fields hold them: each row goes straight
        # to the model (raw() maps and converts every row: 9 ms for 1,000 against 4).
        names, alias = [f.attname for f in fields], connection.alias
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            found = [SpecializationProgress.from_db(alias, names, values)
                     for values in cursor.fetchall()]  # fmt: skip
    else:
        found = SpecializationProgress.objects.raw(sql, params)
    return {(row.student_id, row.specialization_id): row for row in found}


def _lock_rows(rows, read) -> dict[tuple[int, str], SpecializationProgress]:
    """Lock ``rows`` in id order, in one query; the ones whose level or totals changed
    since they were ``read`` (another transaction committed meanwhile), as they are now:
    each with the values it holds (a row deleted meanwhile enrolled again)."""
    if not rows or not connection.features.has_select_for_update:
        return {}  # no row locks (SQLite): its writers take turns for the whole database
    table = quoted(SpecializationProgress)
    columns = ", ".join(["id", "current_level", *TOTALS])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {table} WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE",
            [array(sorted(row.pk for row in rows.values()))],
        )
        now_holds = {pk: tuple(values) for pk, *values in cursor.fetchall()}
    changed = {}
    for pair, row in rows.items():
        state = now_holds.get(row.pk)
        if state == read[pair]:
            continue
        if state is None:
            changed[pair] = lock_progress(_Student(pair[0]), pair[1], enrol=True)
            continue
        fresh = copy.copy(row)
        fresh.current_level, *totals = state
        for total, value in zip(TOTALS, totals, strict=True):
            setattr(fresh, total, value)
        changed[pair] = fresh
    return changed

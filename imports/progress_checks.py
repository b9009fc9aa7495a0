"""Checks of a file's staged lines that need the database: students and idempotency keys.

Each rule is one set-based query, and a rule that cannot fire is not run: no external
id in the file, no key of its own (the keys from the file's hash and line numbers
are all different), or no event of this source in the ledger yet.
"""

from django.contrib.auth import get_user_model

from specializations.models import LEDGER_FIELDS, ExternalId, ProgressEvent, SpecializationProgress

from .progress_file import BadLine

LINES = "import_stage_lines"
_AMOUNTS = [event for event, _ in LEDGER_FIELDS]
_PROGRESS = SpecializationProgress._meta.db_table
_EVENTS = ProgressEvent._meta.db_table


def check_lines(
    cursor, *, source: str, external_source: str, external_ids: bool = True, own_keys: bool = True
) -> list[BadLine]:
    """Students and keys: every bad line, found by one set-based query per rule.

    Lines whose key the ledger (or an earlier line) holds with the same values are
    marked as replays. ``external_ids`` and ``own_keys`` say whether the file gave any.
    """
    bad = []
    if external_ids:
        bad += _external_ids(cursor, external_source)
    users = get_user_model()._meta.db_table
    cursor.execute(
        f"SELECT line, user_id FROM {LINES} s WHERE external_id IS NULL"
        f" AND NOT EXISTS (SELECT 1 FROM {users} u WHERE u.id = s.user_id)"
    )
    bad += [BadLine(line, "student_id", f"{value} is not a user") for line, value in cursor]
    if own_keys:
        bad += _keys_twice(cursor)
    cursor.execute(f"SELECT 1 FROM {_EVENTS} WHERE source = %s LIMIT 1", [source])
    if cursor.fetchone() is not None:
        bad += _keys_in_ledger(cursor, source)
    return bad


def _external_ids(cursor, external_source: str) -> list[BadLine]:
    cursor.execute(
        f"UPDATE {LINES} SET user_id = e.user_id FROM {ExternalId._meta.db_table} e"
        f" WHERE {LINES}.external_id IS NOT NULL AND e.source = %s"
        f" AND e.external_id = {LINES}.external_id",
        [external_source],
    )
    cursor.execute(
        f"SELECT line, external_id FROM {LINES} WHERE external_id IS NOT NULL AND user_id IS NULL"
    )
    return [
        BadLine(line, "external_id", f"{value!r} is not known (source {external_source})")
        for line, value in cursor.fetchall()
    ]


def _keys_twice(cursor) -> list[BadLine]:
    """A key twice in the file: the first line stands; the same values again are a replay."""
    same = " AND ".join(
        ["a.user_id = b.user_id", "a.specialization_id = b.specialization_id"]
        + [f"a.{amount} = b.{amount}" for amount in _AMOUNTS]
    )
    twice = (
        f"FROM {LINES} a JOIN (SELECT idempotency_key, MIN(line) AS first FROM {LINES}"
        " GROUP BY idempotency_key HAVING COUNT(*) > 1) f ON f.idempotency_key = a.idempotency_key"
        f" JOIN {LINES} b ON b.line = f.first WHERE a.line > f.first"
    )
    cursor.execute(f"SELECT a.line, a.idempotency_key, b.line, {same} {twice}")
    bad, replays = [], False
    for line, key, first, equal in cursor.fetchall():
        if equal:
            replays = True
        else:
            bad.append(BadLine(line, "key", f"{key!r} is also on line {first} with other values"))
    if replays:
        cursor.execute(
            f"UPDATE {LINES} SET replay = TRUE WHERE line IN (SELECT a.line {twice} AND {same})"
        )
    return bad


def _keys_in_ledger(cursor, source: str) -> list[BadLine]:
    """A key already in the ledger: a replay when its event is this line's, else a conflict.

    One pass marks both (a conflict keeps its event's id); only the conflicts come back.
    """
    recorded = " AND ".join(
        [f"p.student_id = {LINES}.user_id", f"p.specialization_id = {LINES}.specialization_id"]
        + [f"e.{amount} = {LINES}.{amount}" for amount in _AMOUNTS]
    )
    cursor.execute(
        f"UPDATE {LINES} SET replay = TRUE, conflict = CASE WHEN p.id IS NOT NULL AND {recorded}"
        f" THEN NULL ELSE e.id END FROM {_EVENTS} e LEFT JOIN {_PROGRESS} p"
        f" ON p.id = e.progress_id WHERE e.source = %s"
        f" AND e.idempotency_key = {LINES}.idempotency_key",
        [source],
    )
    cursor.execute(
        f"SELECT line, idempotency_key, conflict FROM {LINES} WHERE conflict IS NOT NULL"
    )
    return [
        BadLine(line, "key", f"{key!r} was recorded before (event {event}) with other values")
        for line, key, event in cursor.fetchall()
    ]

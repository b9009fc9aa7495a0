"""Checks of a file's staged lines that need the database: students and idempotency keys."""

from django.contrib.auth import get_user_model

from specializations.models import LEDGER_FIELDS, ExternalId, ProgressEvent, SpecializationProgress

from .progress_file import BadLine

LINES = "import_stage_lines"
_AMOUNTS = [event for event, _ in LEDGER_FIELDS]
_PROGRESS = SpecializationProgress._meta.db_table
_EVENTS = ProgressEvent._meta.db_table


def check_lines(cursor, *, source: str, external_source: str) -> list[BadLine]:
    """Students and keys: every bad line, found by one set-based query per rule.

    Lines whose key the ledger (or an earlier line) holds with the same values are
    marked as replays.
    """
    bad = []
    users = get_user_model()._meta.db_table
    cursor.execute(
        f"UPDATE {LINES} SET user_id = e.user_id FROM {ExternalId._meta.db_table} e"
        f" WHERE {LINES}.external_id IS NOT NULL AND e.source = %s"
        f" AND e.external_id = {LINES}.external_id",
        [external_source],
    )
    cursor.execute(
        f"SELECT line, external_id FROM {LINES} WHERE external_id IS NOT NULL AND user_id IS NULL"
    )
    bad += [
        BadLine(line, "external_id", f"{value!r} is not known (source {external_source})")
        for line, value in cursor.fetchall()
    ]
    cursor.execute(
        f"SELECT line, user_id FROM {LINES} s WHERE external_id IS NULL"
        f" AND NOT EXISTS (SELECT 1 FROM {users} u WHERE u.id = s.user_id)"
    )
    bad += [BadLine(line, "student_id", f"{value} is not a user") for line, value in cursor]
    same = " AND ".join(
        ["a.user_id = b.user_id", "a.specialization_id = b.specialization_id"]
        + [f"a.{amount} = b.{amount}" for amount in _AMOUNTS]
    )
    # A key twice in the file: the first line stands; the same values again are a replay.
    cursor.execute(
        f"SELECT a.line, a.idempotency_key, b.line, {same} FROM {LINES} a JOIN {LINES} b"
        " ON b.idempotency_key = a.idempotency_key AND b.line < a.line"
        f" WHERE NOT EXISTS (SELECT 1 FROM {LINES} c"
        " WHERE c.idempotency_key = a.idempotency_key AND c.line < b.line)"
    )
    replays = []
    for line, key, first, equal in cursor.fetchall():
        if equal:
            replays.append(line)
        else:
            bad.append(BadLine(line, "key", f"{key!r} is also on line {first} with other values"))
    for start in range(0, len(replays), 500):
        chunk = replays[start : start + 500]
        cursor.execute(
            f"UPDATE {LINES} SET replay = TRUE WHERE line IN ({', '.join(['%s'] * len(chunk))})",
            chunk,
        )
    # A key already in the ledger: a replay when its event is this line's, else a conflict.
    in_ledger = (
        f"FROM {LINES} a JOIN {_EVENTS} e ON e.source = %s"
        " AND e.idempotency_key = a.idempotency_key"
        f" LEFT JOIN {_PROGRESS} p ON p.id = e.progress_id"
    )
    recorded = " AND ".join(
        ["p.student_id = a.user_id", "p.specialization_id = a.specialization_id"]
        + [f"e.{amount} = a.{amount}" for amount in _AMOUNTS]
    )
    cursor.execute(
        f"UPDATE {LINES} SET replay = TRUE WHERE line IN (SELECT a.line {in_ledger}"
        f" WHERE {recorded})",
        [source],
    )
    cursor.execute(
        f"SELECT a.line, a.idempotency_key, e.id {in_ledger}"
        f" WHERE p.id IS NULL OR NOT ({recorded})",
        [source],
    )
    bad += [
        BadLine(line, "key", f"{key!r} was recorded before (event {event}) with other values")
        for line, key, event in cursor.fetchall()
    ]
    return bad

"""Students move up when the catalogue eases: progress, licence and history, set-based.

Called through ``specializations.levels.follow_catalogue_change`` (the receiver
is in ``signals.py``), inside the transaction that changed the catalogue.

Who moves: every pair of the specialization whose progress totals reach a
level above its current one under the catalogue as it now stands, *and* whose
licence is at its progress level. A pair already out of sync is left as it is
(a desync is repair's to settle, by its own rule, never silently here) and is
counted in ``out_of_sync``. Each moved pair's licence goes from the level it
had (its progress's) to the new one, with a history row naming the change;
``max_achieved_level`` never drops. Nobody moves down.

PostgreSQL: one statement, data-modifying CTEs. The pairs are locked (progress,
then licence, as every service does) and their levels re-read under the lock,
so a concurrent ``update_progress`` is waited for, never overwritten. SQLite
(one writer at a time) computes the moves into a temporary table and applies
them with three statements. No per-student loop on either.
"""

from django.db import connections
from django.utils import timezone

from specializations.catalogue import SpecializationInfo
from specializations.levels import LevelsFollowed, describe_levels
from specializations.models import SpecializationProgress

from .models import LicenseProgression, UserLicense
from .services import require_reason

CATALOGUE_CHANGE_REASON = "catalogue change: {code} {levels}"

_PROGRESS = SpecializationProgress._meta.db_table
_LICENSE = UserLicense._meta.db_table
_HISTORY = LicenseProgression._meta.db_table
_MOVES = "academy_catalogue_moves"  # SQLite's temporary table


def reason_for(info: SpecializationInfo, levels: tuple[int, ...]) -> str:
    reason = CATALOGUE_CHANGE_REASON.format(code=info.code, levels=describe_levels(levels))
    max_length = LicenseProgression._meta.get_field("reason").max_length
    return require_reason(reason if len(reason) <= max_length else reason[: max_length - 3] + "...")


def _qualifying(info: SpecializationInfo) -> tuple[str, list]:
    """Conditions on the progress row ``p``: its totals reach a level above its current one."""
    level, params = info.level_sql("p")
    return (
        f"p.specialization_id = %s AND p.current_level < %s AND ({level}) > p.current_level",
        [info.code, info.top_level, *params],
    )


_IN_SYNC = (
    f"EXISTS (SELECT 1 FROM {_LICENSE} l WHERE l.user_id = p.student_id"
    " AND l.specialization_id = p.specialization_id AND l.current_level = p.current_level)"
)


def follow_catalogue(
    info: SpecializationInfo, *, levels: tuple[int, ...], dry_run: bool = False, using: str
) -> LevelsFollowed:
    """Move the qualifying in-sync pairs of ``info`` up (the caller holds the transaction)."""
    connection = connections[using]
    if info.top_level <= 1:
        return LevelsFollowed(info.code, dry_run=dry_run)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        if dry_run:
            moved = _plan(cursor, info)
        elif connection.vendor == "postgresql":
            moved = _move_postgresql(cursor, info, reason_for(info, levels), now)
        else:
            moved = _move_sqlite(cursor, info, reason_for(info, levels), now)
        qualifying, params = _qualifying(info)
        # Qualifying and not in sync: after the move, exactly the pairs still qualifying.
        cursor.execute(
            f"SELECT count(*) FROM {_PROGRESS} p WHERE {qualifying} AND NOT {_IN_SYNC}", params
        )
        (out_of_sync,) = cursor.fetchone()
    return LevelsFollowed(info.code, moved=moved, out_of_sync=out_of_sync, dry_run=dry_run)


def _plan(cursor, info: SpecializationInfo) -> dict[int, int]:
    level, level_params = info.level_sql("p")
    qualifying, params = _qualifying(info)
    cursor.execute(
        f"SELECT {level}, count(*) FROM {_PROGRESS} p WHERE {qualifying} AND {_IN_SYNC}"
        " GROUP BY 1 ORDER BY 1",
        [*level_params, *params],
    )
    return dict(cursor.fetchall())


def _move_postgresql(cursor, info: SpecializationInfo, reason: str, now) -> dict[int, int]:
    level, level_params = info.level_sql("p")
    qualifying, params = _qualifying(info)
    # FOR UPDATE waits for a pair another transaction is changing, then re-reads both
    # rows and re-checks the conditions on them; the UPDATE computes the level from
    # the row as locked, and the licence moves from the level it had under the lock.
    cursor.execute(
        f"""
        WITH candidates AS (
            SELECT p.id, p.current_level AS old_level
              FROM {_PROGRESS} p
              JOIN {_LICENSE} l ON l.user_id = p.student_id
                               AND l.specialization_id = p.specialization_id
             WHERE {qualifying} AND l.current_level = p.current_level
               FOR UPDATE OF p, l
        ), moved AS (
            UPDATE {_PROGRESS} p SET current_level = {level}
              FROM candidates c WHERE p.id = c.id
            RETURNING p.student_id, c.old_level, p.current_level AS new_level
        ), licences AS (
            UPDATE {_LICENSE} l SET current_level = m.new_level,
                   max_achieved_level = GREATEST(l.max_achieved_level, m.new_level),
                   last_advanced_at = %s
              FROM moved m
             WHERE l.user_id = m.student_id AND l.specialization_id = %s
            RETURNING l.id, m.old_level, m.new_level
        ), history AS (
            INSERT INTO {_HISTORY} (license_id, from_level, to_level, reason)
            SELECT id, old_level, new_level, %s FROM licences
            RETURNING to_level
        )
        SELECT to_level, count(*) FROM history GROUP BY 1 ORDER BY 1
        """,
        [*params, *level_params, now, info.code, reason],
    )
    return dict(cursor.fetchall())


def _move_sqlite(cursor, info: SpecializationInfo, reason: str, now) -> dict[int, int]:
    level, level_params = info.level_sql("p")
    qualifying, params = _qualifying(info)
    moves = f"temp.{_MOVES}"
    licence_of = f"{_LICENSE}.user_id = m.student_id AND {_LICENSE}.specialization_id = %s"
    cursor.execute(f"DROP TABLE IF EXISTS {moves}")
    cursor.execute(
        f"CREATE TEMP TABLE {_MOVES} (progress_id integer PRIMARY KEY, student_id integer,"
        " old_level integer, new_level integer)"
    )
    try:
        cursor.execute(
            f"INSERT INTO {moves} SELECT p.id, p.student_id, p.current_level, {level}"
            f" FROM {_PROGRESS} p WHERE {qualifying} AND {_IN_SYNC}",
            [*level_params, *params],
        )
        cursor.execute(
            f"UPDATE {_PROGRESS} SET current_level = (SELECT m.new_level FROM {moves} m"
            f" WHERE m.progress_id = {_PROGRESS}.id)"
            f" WHERE id IN (SELECT progress_id FROM {moves})"
        )
        cursor.execute(
            f"INSERT INTO {_HISTORY} (license_id, from_level, to_level, reason)"
            f" SELECT l.id, m.old_level, m.new_level, %s FROM {moves} m"
            f" JOIN {_LICENSE} l ON l.user_id = m.student_id AND l.specialization_id = %s",
            [reason, info.code],
        )
        cursor.execute(
            f"UPDATE {_LICENSE} SET (current_level, max_achieved_level, last_advanced_at) ="
            f" (SELECT m.new_level, max({_LICENSE}.max_achieved_level, m.new_level), %s"
            f" FROM {moves} m WHERE {licence_of})"
            f" WHERE EXISTS (SELECT 1 FROM {moves} m WHERE {licence_of})",
            [now, info.code, info.code],
        )
        cursor.execute(f"SELECT new_level, count(*) FROM {moves} GROUP BY 1 ORDER BY 1")
        return dict(cursor.fetchall())
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {moves}")

"""The set-based passes of import_progress: from the checked lines to the written rows.

``plan`` makes one row per touched pair (its rows locked first when writing) with
its totals before and after, the level those reach by the catalogue's SQL rule
(specializations/catalogue.py ``level_sql``) and the new level; ``write`` writes
the enrolments, the totals and levels, one ledger event per line, and each pair's
licence (moved or issued, with its history row).

A line's levels need the running totals of its pair only when the pair has more
than one line in the file: a window over those pairs' lines alone. A pair of one
line goes from its current level to the level of its new totals. Totals can fall
only in a pair with a correction (a negative amount), so only those pairs' running
totals are checked against 0, and only their new level is the highest any of their
lines reached rather than the level of the final totals.
"""

from dataclasses import dataclass

from licenses.models import LicenseProgression, UserLicense
from licenses.services import AUTO_SYNC_REASON, ISSUED_REASON
from specializations.models import LEDGER_FIELDS, ProgressEvent, SpecializationProgress

from .progress_checks import LINES
from .progress_file import AMOUNTS, BadLine

PAIRS = "import_stage_pairs"
_AMOUNTS = [event for event, _ in LEDGER_FIELDS]
_TOTALS = [total for _, total in LEDGER_FIELDS]
PAIR_COLUMNS = [
    ("user_id", "big"),
    ("specialization_id", "text"),
    ("progress_id", "big"),
    ("license_id", "big"),
    ("license_level", "int"),
    ("current_level", "int"),
    ("lines", "big"),
    ("corrected", "int"),  # 1: a line of the pair has a negative amount
    *((total, "big") for total in _TOTALS),  # the new totals (the level rule's names)
    *((f"base_{amount}", "big") for amount in _AMOUNTS),  # the totals before
    ("reached", "int"),  # the level of the new totals
    ("new_level", "int"),
]
_PROGRESS = SpecializationProgress._meta.db_table
_LICENSES = UserLicense._meta.db_table
_HISTORY = LicenseProgression._meta.db_table
_EVENTS = ProgressEvent._meta.db_table
_LIVE = f"{LINES}.replay IS NOT TRUE"
_SAME_PAIR = "{0}.user_id = {1}.user_id AND {0}.specialization_id = {1}.specialization_id"


@dataclass(frozen=True, slots=True)
class Plan:
    levels: str  # SQL: each line's levels (pairs of more than one line), or "" (none)
    params: list
    pairs: int
    events: int
    enrolled: int
    levels_raised: int
    licences_moved: int
    licences_issued: int


def plan(cursor, catalogue, *, lock: bool, corrections: bool) -> tuple[list[BadLine], Plan | None]:
    """The touched pairs (their rows locked when ``lock``), their new totals and levels.

    Returns the bad lines (running totals below 0, looked for when the file has
    ``corrections``) or the plan of the writes.
    """
    vendor = cursor.db.vendor
    progress = _PROGRESS
    if lock and vendor == "postgresql":
        # Locked as they are read, in id order as the services lock them; a licence is
        # locked by the write that moves it, after every progress row of the file.
        progress = (
            f"(SELECT t.* FROM {_PROGRESS} t WHERE EXISTS (SELECT 1 FROM {LINES} WHERE {_LIVE}"
            f" AND {LINES}.user_id = t.student_id"
            f" AND {LINES}.specialization_id = t.specialization_id)"
            " ORDER BY t.id FOR UPDATE OF t)"
        )
    greatest = "GREATEST" if vendor == "postgresql" else "MAX"
    level, params = _level_case(catalogue, "x")
    negative = " OR ".join(f"{amount} < 0" for amount in _AMOUNTS)
    sums = ", ".join(f"SUM({amount}) AS {amount}" for amount in _AMOUNTS)
    base = [f"COALESCE(p.{total}, 0)" for total in _TOTALS]
    columns = [name for name, _ in PAIR_COLUMNS]
    cursor.execute(
        f"INSERT INTO {PAIRS} ({', '.join(columns)})"
        f" SELECT y.*, {greatest}(y.reached, COALESCE(y.license_level, 0))"
        f" FROM (SELECT x.*, {level} AS reached FROM"
        " (SELECT a.user_id, a.specialization_id, p.id, l.id AS license_id,"
        " l.current_level AS license_level,"
        " COALESCE(p.current_level, l.current_level, 1) AS current_level, a.lines, a.corrected, "
        + ", ".join(
            f"{old} + a.{amount} AS {total}"
            for old, amount, total in zip(base, _AMOUNTS, _TOTALS, strict=True)
        )
        + ", "
        + ", ".join(f"{old} AS base_{amount}" for old, amount in zip(base, _AMOUNTS, strict=True))
        + f" FROM (SELECT user_id, specialization_id, COUNT(*) AS lines,"
        f" MAX(CASE WHEN {negative} THEN 1 ELSE 0 END) AS corrected, {sums}"
        f" FROM {LINES} WHERE {_LIVE} GROUP BY user_id, specialization_id) a"
        f" LEFT JOIN {progress} p ON p.student_id = a.user_id"
        " AND p.specialization_id = a.specialization_id"
        f" LEFT JOIN {_LICENSES} l ON {_SAME_PAIR.format('l', 'a')}) x) y",
        params,
    )
    cursor.execute(f"ANALYZE {PAIRS}")
    if corrections:  # no running total may fall below 0
        running = ", ".join(_TOTALS)
        cursor.execute(
            f"SELECT line, {running} FROM ({_steps('q.corrected = 1')}) x WHERE "
            + " OR ".join(f"{total} < 0" for total in _TOTALS)
        )
        found = [
            BadLine(row[0], column, f"would make {total} {value}")
            for row in cursor.fetchall()
            for column, total, value in zip(AMOUNTS, _TOTALS, row[1:], strict=True)
            if value < 0
        ]
        if found:
            return found, None
    cursor.execute(
        "SELECT COUNT(*), COALESCE(SUM(lines), 0), COUNT(CASE WHEN lines > 1 THEN 1 END),"
        " COUNT(CASE WHEN lines > 1 AND corrected = 1 THEN 1 END) FROM " + PAIRS
    )
    pairs, events, several, corrected = cursor.fetchone()
    events = int(events)  # PostgreSQL sums a bigint as a numeric
    levels, level_params = _levels(catalogue) if several else ("", [])
    if corrected:  # totals may fall: the highest level any line reached
        cursor.execute(
            f"UPDATE {PAIRS} SET new_level = {greatest}(a.reached,"
            f" COALESCE({PAIRS}.license_level, 0)) FROM (SELECT user_id, specialization_id,"
            f" MAX(level_after) AS reached FROM ({levels}) n GROUP BY user_id, specialization_id)"
            f" a WHERE {_SAME_PAIR.format('a', PAIRS)} AND {PAIRS}.corrected = 1",
            level_params,
        )
    cursor.execute(
        "SELECT COUNT(CASE WHEN progress_id IS NULL THEN 1 END),"
        " COUNT(CASE WHEN new_level > current_level THEN 1 END),"
        " COUNT(CASE WHEN license_id IS NOT NULL AND license_level < new_level THEN 1 END),"
        f" COUNT(CASE WHEN license_id IS NULL THEN 1 END) FROM {PAIRS}"
    )
    return [], Plan(levels, level_params, pairs, events, *cursor.fetchone())


def _steps(which: str) -> str:
    """Each line of the pairs ``which`` picks, with its pair's running totals."""
    running = ", ".join(
        f"q.base_{amount} + SUM(s.{amount}) OVER w AS {total}" for amount, total in LEDGER_FIELDS
    )
    return (
        f"SELECT s.line, s.user_id, s.specialization_id, q.current_level, {running}"
        f" FROM {LINES} s JOIN {PAIRS} q ON {_SAME_PAIR.format('q', 's')}"
        f" WHERE s.replay IS NOT TRUE AND {which}"
        " WINDOW w AS (PARTITION BY s.user_id, s.specialization_id ORDER BY s.line)"
    )


def _levels(catalogue) -> tuple[str, list]:
    """Each line's levels in a pair of several lines: the highest its running totals have
    reached (never lower), and the one before it."""
    level, params = _level_case(catalogue, "x")
    window = "WINDOW w AS (PARTITION BY user_id, specialization_id ORDER BY line)"
    return (
        "SELECT line, user_id, specialization_id,"
        " COALESCE(LAG(reached) OVER w, current_level) AS level_before, reached AS level_after"
        " FROM (SELECT line, user_id, specialization_id, current_level,"
        f" MAX({level}) OVER w AS reached FROM ({_steps('q.lines > 1')}) x {window}) y {window}",
        params,
    )


def _level_case(catalogue, alias: str) -> tuple[str, list]:
    """The catalogue's level rule for every active specialization, as one CASE (a file's
    lines name active ones only)."""
    whens, params = [], []
    for code in sorted(code for code, info in catalogue.items() if info.is_active):
        sql, more = catalogue[code].level_sql(alias)
        whens.append(f"WHEN %s THEN ({sql})")
        params += [code, *more]
    if not whens:
        return f"{alias}.current_level", []
    return f"(CASE {alias}.specialization_id {' '.join(whens)} END)", params


def write(cursor, *, source: str, planned: Plan) -> None:
    vendor = cursor.db.vendor
    now = "now()" if vendor == "postgresql" else "CURRENT_TIMESTAMP"
    greatest = "GREATEST" if vendor == "postgresql" else "MAX"
    totals = ", ".join(_TOTALS)
    if planned.enrolled:  # the new rows at their final totals and level (their events follow)
        cursor.execute(
            f"INSERT INTO {_PROGRESS} (student_id, specialization_id, current_level, {totals},"
            f" last_activity, created_at) SELECT user_id, specialization_id, new_level, {totals},"
            f" {now}, {now} FROM {PAIRS} WHERE progress_id IS NULL"
        )
        cursor.execute(
            f"UPDATE {PAIRS} SET progress_id = p.id FROM {_PROGRESS} p"
            f" WHERE {PAIRS}.progress_id IS NULL AND p.student_id = {PAIRS}.user_id"
            f" AND p.specialization_id = {PAIRS}.specialization_id"
        )
    cursor.execute(
        f"UPDATE {_PROGRESS} SET {', '.join(f'{t} = q.{t}' for t in _TOTALS)},"
        f" current_level = q.new_level, last_activity = {now} FROM {PAIRS} q"
        f" WHERE {_PROGRESS}.id = q.progress_id"
    )
    before, after, levels = "q.current_level", "q.reached", ""
    if planned.levels:
        before, after = f"COALESCE(n.level_before, {before})", f"COALESCE(n.level_after, {after})"
        levels = f" LEFT JOIN ({planned.levels}) n ON n.line = s.line"
    amounts = ", ".join(_AMOUNTS)
    cursor.execute(
        f"INSERT INTO {_EVENTS} (progress_id, source, idempotency_key, reason, occurred_at,"
        f" recorded_at, level_before, level_after, {amounts})"
        f" SELECT q.progress_id, %s, s.idempotency_key, s.reason, COALESCE(s.occurred_at, {now}),"
        f" {now}, {before}, {after}, {', '.join(f's.{a}' for a in _AMOUNTS)}"
        f" FROM {LINES} s JOIN {PAIRS} q ON {_SAME_PAIR.format('q', 's')}{levels}"
        " WHERE s.replay IS NOT TRUE ORDER BY s.line",
        [source, *planned.params],
    )
    # Licences follow the progress level, each change with its history row.
    if planned.licences_moved:
        cursor.execute(
            f"INSERT INTO {_HISTORY} (license_id, from_level, to_level, reason, created_at)"
            f" SELECT license_id, license_level, new_level, %s, {now} FROM {PAIRS}"
            " WHERE license_id IS NOT NULL AND license_level < new_level",
            [AUTO_SYNC_REASON],
        )
        cursor.execute(
            f"UPDATE {_LICENSES} SET current_level ="
            f" {greatest}({_LICENSES}.current_level, q.new_level),"
            f" max_achieved_level = {greatest}({_LICENSES}.max_achieved_level, q.new_level),"
            f" last_advanced_at = {now} FROM {PAIRS} q"
            f" WHERE {_LICENSES}.id = q.license_id AND q.license_level < q.new_level"
        )
    if planned.licences_issued:
        cursor.execute(
            f"INSERT INTO {_LICENSES} (user_id, specialization_id, current_level,"
            f" max_achieved_level, started_at, is_active) SELECT user_id, specialization_id,"
            f" new_level, new_level, {now}, TRUE FROM {PAIRS} WHERE license_id IS NULL"
        )
        cursor.execute(
            f"INSERT INTO {_HISTORY} (license_id, from_level, to_level, reason, created_at)"
            f" SELECT l.id, NULL, l.current_level, %s, {now} FROM {PAIRS} q JOIN {_LICENSES} l"
            " ON l.user_id = q.user_id AND l.specialization_id = q.specialization_id"
            " WHERE q.license_id IS NULL",
            [ISSUED_REASON],
        )

"""``import_progress``: a file of progress events through the ledger, set-based, all or nothing.

1. Stage the file's lines (imports/progress_file.py) into a temporary table.
2. Check every line: its student (user id or external id), its key (a key already
   in the ledger, or earlier in the file, with the same values is a replay; with
   other values a conflict) and the running totals (none may fall below 0).
   Any bad line refuses the whole file: nothing is written.
3. One pass, in one transaction: the touched progress rows locked (in id order,
   then their licences, as the services lock), the level each event reaches by the
   catalogue's SQL rule (specializations/catalogue.py ``level_sql``), one ledger
   event per line, the totals and levels written, and each touched pair's licence
   moved (or issued) to the progress level with its history row. Every touched
   pair ends in sync; the commit guard stays on.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connections, transaction

from licenses.models import LicenseProgression, UserLicense
from licenses.services import AUTO_SYNC_REASON, ISSUED_REASON
from specializations.catalogue import all_specializations, clear_cache
from specializations.models import LEDGER_FIELDS, ProgressEvent, SpecializationProgress
from specializations.services import require_source

from .progress_checks import LINES as _LINES
from .progress_checks import check_lines
from .progress_file import AMOUNTS, LINE_COLUMNS, BadLine, EventFile
from .replaced_system import SOURCE as REPLACED_SYSTEM
from .staging import StagingTable

BATCH = 10_000
SHOWN_BAD_LINES = 100
_AMOUNTS = [event for event, _ in LEDGER_FIELDS]
_TOTALS = [total for _, total in LEDGER_FIELDS]
_PAIRS = "import_stage_pairs"
_PROGRESS = SpecializationProgress._meta.db_table
_LICENSES = UserLicense._meta.db_table
_HISTORY = LicenseProgression._meta.db_table
_EVENTS = ProgressEvent._meta.db_table
_PAIR_ON = "p.student_id = {0}.user_id AND p.specialization_id = {0}.specialization_id"


@dataclass(slots=True)
class FileReport:
    source: str = ""
    lines: int = 0
    events: int = 0  # new events: written, or to be written on a dry run
    replays: int = 0
    pairs: int = 0
    enrolled: int = 0
    levels_raised: int = 0
    licences_moved: int = 0
    licences_issued: int = 0
    bad: list[BadLine] = field(default_factory=list)  # the first SHOWN_BAD_LINES, by line
    bad_count: int = 0
    written: bool = False


def import_progress(
    path: str | Path,
    *,
    source: str | None = None,
    external_source: str = REPLACED_SYSTEM,
    dry_run: bool = False,
    using: str = "default",
    on_progress: Callable[[int], None] | None = None,
) -> FileReport:
    """Import the events in ``path``; ``source`` names them in the ledger (default
    ``import:<file name>``); external ids are looked up under ``external_source``."""
    path = Path(path)
    report = FileReport(source=require_source(source or f"import:{path.name}"))
    clear_cache()
    catalogue = all_specializations()
    events = EventFile(path, catalogue=catalogue)
    lines = StagingTable(
        _LINES,
        [*LINE_COLUMNS, ("replay", "bool")],
        using=using,
    )
    pairs = StagingTable(
        _PAIRS,
        [
            ("user_id", "big"),
            ("specialization_id", "text"),
            ("progress_id", "big"),
            ("license_id", "big"),
            ("license_level", "int"),
            ("current_level", "int"),
            ("new_level", "int"),
            *((total, "big") for total in _TOTALS),  # the new totals (the level rule's names)
            *((f"base_{amount}", "big") for amount in _AMOUNTS),  # the totals before
        ],
        using=using,
    )
    connection = connections[using]
    try:
        lines.create()
        pairs.create()
        bad: list[BadLine] = []
        batch = []
        for row in events.rows(bad):
            batch.append(row)
            if len(batch) == BATCH:
                report.lines += lines.insert(batch)
                batch = []
                if on_progress is not None:
                    on_progress(report.lines)
        report.lines += lines.insert(batch) + len({line.line for line in bad})
        with connection.cursor() as cursor:
            for columns in ("user_id, specialization_id", "idempotency_key"):
                name = f"{_LINES}_{columns.split('_')[0]}"
                cursor.execute(f"CREATE INDEX {name} ON {_LINES} ({columns})")
            lines.analyze()
            bad += check_lines(cursor, source=report.source, external_source=external_source)
            with transaction.atomic(using=using):
                negative, levels = _plan(cursor, catalogue, lock=not dry_run and not bad)
                bad += negative
                if bad:
                    report.bad_count = len(bad)
                    report.bad = sorted(bad, key=lambda b: b.line)[:SHOWN_BAD_LINES]
                    return report
                _count(cursor, report)
                if not dry_run:
                    _write(cursor, report.source, connection.vendor, levels)
                    report.written = True
        return report
    finally:
        lines.drop()
        pairs.drop()


def _plan(cursor, catalogue, *, lock: bool) -> tuple[list[BadLine], tuple | None]:
    """The touched pairs (their rows locked), their new totals and levels; returns the bad
    lines (running totals below 0) and the SQL of each line's levels, for its event."""
    live = f"{_LINES}.replay IS NOT TRUE"
    if lock and cursor.db.vendor == "postgresql":  # the services' order: progress, then licence
        for table, user in ((_PROGRESS, "student_id"), (_LICENSES, "user_id")):
            cursor.execute(
                f"SELECT t.id FROM {table} t WHERE EXISTS (SELECT 1 FROM {_LINES}"
                f" WHERE {live} AND {_LINES}.user_id = t.{user}"
                f" AND {_LINES}.specialization_id = t.specialization_id)"
                " ORDER BY t.id FOR UPDATE OF t"
            )
    base = ", ".join(f"COALESCE(p.{total}, 0)" for total in _TOTALS)
    cursor.execute(
        f"INSERT INTO {_PAIRS} (user_id, specialization_id, progress_id, license_id,"
        f" license_level, current_level, {', '.join(_TOTALS)},"
        f" {', '.join(f'base_{amount}' for amount in _AMOUNTS)})"
        " SELECT d.user_id, d.specialization_id, p.id, l.id, l.current_level,"
        f" COALESCE(p.current_level, l.current_level, 1), {base}, {base}"
        f" FROM (SELECT DISTINCT user_id, specialization_id FROM {_LINES} WHERE {live}) d"
        f" LEFT JOIN {_PROGRESS} p ON {_PAIR_ON.format('d')}"
        f" LEFT JOIN {_LICENSES} l ON l.user_id = d.user_id"
        " AND l.specialization_id = d.specialization_id"
    )
    cursor.execute(f"ANALYZE {_PAIRS}")
    running = ", ".join(
        f"q.base_{amount} + SUM(s.{amount}) OVER w AS {total}" for amount, total in LEDGER_FIELDS
    )
    steps = (
        f"SELECT s.line, s.user_id, s.specialization_id, q.current_level, {running}"
        f" FROM {_LINES} s JOIN {_PAIRS} q ON q.user_id = s.user_id"
        f" AND q.specialization_id = s.specialization_id WHERE s.replay IS NOT TRUE"
        " WINDOW w AS (PARTITION BY s.user_id, s.specialization_id ORDER BY s.line)"
    )
    cursor.execute(
        f"SELECT 1 FROM {_LINES} WHERE "
        + " OR ".join(f"{amount} < 0" for amount in _AMOUNTS)
        + " LIMIT 1"
    )
    corrections = cursor.fetchone() is not None
    if corrections:  # no running total may fall below 0
        cursor.execute(
            f"SELECT line, {', '.join(_TOTALS)} FROM ({steps}) x WHERE "
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
    level, params = _level_case(cursor, catalogue, "x")
    window = "WINDOW w AS (PARTITION BY user_id, specialization_id ORDER BY line)"
    # Each line's levels: the highest the running totals have reached (never lower).
    levels = (
        "SELECT line, user_id, specialization_id,"
        " COALESCE(LAG(reached) OVER w, current_level) AS level_before, reached AS level_after"
        " FROM (SELECT line, user_id, specialization_id, current_level,"
        f" MAX({level}) OVER w AS reached FROM ({steps}) x {window}) y {window}"
    )
    greatest = "GREATEST" if cursor.db.vendor == "postgresql" else "MAX"
    sums = ", ".join(f"SUM({amount}) AS {amount}" for amount in _AMOUNTS)
    additions = ", ".join(
        f"{total} = {_PAIRS}.{total} + a.{amount}" for amount, total in LEDGER_FIELDS
    )
    same_pair = f"a.user_id = {_PAIRS}.user_id AND a.specialization_id = {_PAIRS}.specialization_id"
    cursor.execute(
        f"UPDATE {_PAIRS} SET {additions} FROM (SELECT user_id, specialization_id, {sums}"
        f" FROM {_LINES} WHERE replay IS NOT TRUE GROUP BY user_id, specialization_id) a"
        f" WHERE {same_pair}"
    )
    licence = f"COALESCE({_PAIRS}.license_level, 0)"  # a licence ahead raises the progress
    if corrections:  # totals may fall: the highest level any line reached
        cursor.execute(
            f"UPDATE {_PAIRS} SET new_level = {greatest}(a.reached, {licence}) FROM"
            " (SELECT user_id, specialization_id, MAX(level_after) AS reached"
            f" FROM ({levels}) n GROUP BY user_id, specialization_id) a WHERE {same_pair}",
            params,
        )
    else:  # totals only rise: the level of the final totals is the highest reached
        final, final_params = _level_case(cursor, catalogue, _PAIRS)
        cursor.execute(
            f"UPDATE {_PAIRS} SET new_level = {greatest}({final}, {licence})", final_params
        )
    return [], (levels, params)


def _level_case(cursor, catalogue, alias: str) -> tuple[str, list]:
    """The catalogue's level rule for every specialization in the file, as one CASE."""
    cursor.execute(f"SELECT DISTINCT specialization_id FROM {_PAIRS}")
    whens, params = [], []
    for (code,) in cursor.fetchall():
        sql, more = catalogue[code].level_sql(alias)
        whens.append(f"WHEN %s THEN ({sql})")
        params += [code, *more]
    if not whens:  # nothing left to apply (every line a replay)
        return f"{alias}.current_level", []
    return f"(CASE {alias}.specialization_id {' '.join(whens)} END)", params


def _count(cursor, report: FileReport) -> None:
    cursor.execute(
        f"SELECT COUNT(*) FILTER (WHERE replay IS TRUE), COUNT(*) FILTER (WHERE replay IS NOT TRUE)"
        f" FROM {_LINES}"
    )
    report.replays, report.events = cursor.fetchone()
    cursor.execute(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE progress_id IS NULL),"
        " COUNT(*) FILTER (WHERE new_level > current_level),"
        " COUNT(*) FILTER (WHERE license_id IS NOT NULL AND license_level < new_level),"
        f" COUNT(*) FILTER (WHERE license_id IS NULL) FROM {_PAIRS}"
    )
    (
        report.pairs,
        report.enrolled,
        report.levels_raised,
        report.licences_moved,
        report.licences_issued,
    ) = cursor.fetchone()


def _write(cursor, source: str, vendor: str, levels: tuple[str, list]) -> None:
    now = "now()" if vendor == "postgresql" else "CURRENT_TIMESTAMP"
    greatest = "GREATEST" if vendor == "postgresql" else "MAX"
    totals = ", ".join(_TOTALS)
    # Enrolments: the new rows at their final totals and level (their events follow).
    cursor.execute(
        f"INSERT INTO {_PROGRESS} (student_id, specialization_id, current_level, {totals},"
        f" last_activity, created_at) SELECT user_id, specialization_id, new_level, {totals},"
        f" {now}, {now} FROM {_PAIRS} WHERE progress_id IS NULL"
    )
    cursor.execute(
        f"UPDATE {_PAIRS} SET progress_id = p.id FROM {_PROGRESS} p"
        f" WHERE {_PAIRS}.progress_id IS NULL AND {_PAIR_ON.format(_PAIRS)}"
    )
    cursor.execute(
        f"UPDATE {_PROGRESS} SET {', '.join(f'{t} = q.{t}' for t in _TOTALS)},"
        f" current_level = q.new_level, last_activity = {now} FROM {_PAIRS} q"
        f" WHERE {_PROGRESS}.id = q.progress_id"
    )
    amounts = ", ".join(_AMOUNTS)
    cursor.execute(
        f"INSERT INTO {_EVENTS} (progress_id, source, idempotency_key, reason, occurred_at,"
        f" recorded_at, level_before, level_after, {amounts})"
        f" SELECT q.progress_id, %s, s.idempotency_key, s.reason, COALESCE(s.occurred_at, {now}),"
        f" {now}, n.level_before, n.level_after, {', '.join(f's.{a}' for a in _AMOUNTS)}"
        f" FROM {_LINES} s JOIN {_PAIRS} q ON q.user_id = s.user_id"
        f" AND q.specialization_id = s.specialization_id JOIN ({levels[0]}) n ON n.line = s.line"
        " WHERE s.replay IS NOT TRUE ORDER BY s.line",
        [source, *levels[1]],
    )
    # Licences follow the progress level, each change with its history row.
    cursor.execute(
        f"INSERT INTO {_HISTORY} (license_id, from_level, to_level, reason, created_at)"
        f" SELECT license_id, license_level, new_level, %s, {now} FROM {_PAIRS}"
        " WHERE license_id IS NOT NULL AND license_level < new_level",
        [AUTO_SYNC_REASON],
    )
    cursor.execute(
        f"UPDATE {_LICENSES} SET current_level = q.new_level,"
        f" max_achieved_level = {greatest}({_LICENSES}.max_achieved_level, q.new_level),"
        f" last_advanced_at = {now} FROM {_PAIRS} q"
        f" WHERE {_LICENSES}.id = q.license_id AND q.license_level < q.new_level"
    )
    cursor.execute(
        f"INSERT INTO {_LICENSES} (user_id, specialization_id, current_level,"
        f" max_achieved_level, started_at, is_active) SELECT user_id, specialization_id,"
        f" new_level, new_level, {now}, TRUE FROM {_PAIRS} WHERE license_id IS NULL"
    )
    cursor.execute(
        f"INSERT INTO {_HISTORY} (license_id, from_level, to_level, reason, created_at)"
        f" SELECT l.id, NULL, l.current_level, %s, {now} FROM {_PAIRS} q JOIN {_LICENSES} l"
        " ON l.user_id = q.user_id AND l.specialization_id = q.specialization_id"
        " WHERE q.license_id IS NULL",
        [ISSUED_REASON],
    )

"""The import's writes: staged rows into the product's tables, set-based, one transaction.

For each table: staged rows find their product row through ImportedRow (the
last run's mapping); new ones get ids from the product table's own sequence
and are inserted in one INSERT ... SELECT; rows whose digest changed at the
source are updated in one UPDATE ... FROM; the mapping follows. Desyncs go in
as the source holds them, through the commit guard's scoped bypass.
"""

from django.contrib.auth import get_user_model
from django.db import connections

from licenses.guard import unguarded
from licenses.models import LicenseProgression, UserLicense
from specializations.models import LEDGER_FIELDS, ExternalId, ProgressEvent, SpecializationProgress

from .models import ImportedRow
from .replaced_system import HISTORY, LEDGER_SOURCE, LICENSES, PROGRESS, SOURCE, STAGING, USERS

OPENING_REASON = "Opening balance: imported from the replaced system"
CHANGE_REASON = "The replaced system's totals changed since the last import"

_S = {table: name for table, (name, _) in STAGING.items()}
_MAPPED = ImportedRow._meta.db_table
_EXTERNAL = ExternalId._meta.db_table
_EVENTS = ProgressEvent._meta.db_table


def write(*, using: str = "default") -> None:
    connection = connections[using]
    with unguarded(using), connection.cursor() as cursor:
        sql = _Sql(connection.vendor)
        cursor.execute(f"SELECT {sql.now}")
        stamp = str(cursor.fetchone()[0])  # this run's mark in its ledger keys
        _map(cursor, sql, USERS, get_user_model())
        _users(cursor, sql)
        _map(cursor, sql, PROGRESS, SpecializationProgress)
        _progress(cursor, sql, stamp)
        _map(cursor, sql, LICENSES, UserLicense)
        _licenses(cursor, sql)
        _map(cursor, sql, HISTORY, LicenseProgression)
        _history(cursor)
        for table in STAGING:
            _remember(cursor, sql, table)


class _Sql:
    def __init__(self, vendor: str):
        self.vendor = vendor
        self.greatest = "GREATEST" if vendor == "postgresql" else "MAX"
        self.now = "now()" if vendor == "postgresql" else "CURRENT_TIMESTAMP"
        self.unusable_password = (
            "'!' || md5(random()::text)"
            if vendor == "postgresql"
            else "'!' || lower(hex(randomblob(20)))"
        )


def _map(cursor, sql: _Sql, table: str, model) -> None:
    """Fill staging's target_id: the mapped row, or a new id from the table's sequence."""
    stage, target = _S[table], model._meta.db_table
    cursor.execute(
        f"UPDATE {stage} SET target_id = m.target_id, is_new = FALSE FROM {_MAPPED} m"
        f' WHERE m.source = %s AND m."table" = %s AND m.source_id = {stage}.id',
        [SOURCE, table],
    )
    if table in (PROGRESS, LICENSES):
        _adopt(cursor, table, target)
    if table == USERS:  # linked by hand (or by an earlier API sender) before the first run
        cursor.execute(
            f"UPDATE {stage} SET target_id = e.user_id, is_new = FALSE FROM {_EXTERNAL} e"
            f" WHERE {stage}.target_id IS NULL AND e.source = %s"
            f" AND e.external_id = CAST({stage}.id AS TEXT)",
            [SOURCE],
        )
    if sql.vendor == "postgresql":
        cursor.execute(
            f"UPDATE {stage} SET is_new = TRUE,"
            f" target_id = nextval(pg_get_serial_sequence('{target}', 'id'))"
            " WHERE target_id IS NULL"
        )
    else:  # one writer at a time: the ids after the table's highest
        cursor.execute(
            f"UPDATE {stage} SET is_new = TRUE, target_id = n.number FROM (SELECT id,"
            f" (SELECT COALESCE(MAX(id), 0) FROM {target}) + row_number() OVER (ORDER BY id)"
            f" AS number FROM {stage} WHERE target_id IS NULL) n WHERE {stage}.id = n.id"
        )


def _adopt(cursor, table: str, target: str) -> None:
    """A pair that already has a product row (enrolled since the last run) keeps it.

    Its digest is unknown, so the source's values are written over it as a change.
    """
    stage, user = _S[table], "student_id" if table == PROGRESS else "user_id"
    cursor.execute(
        f"UPDATE {stage} SET target_id = t.id, is_new = FALSE FROM {target} t, {_S[USERS]} u"
        f" WHERE {stage}.target_id IS NULL AND u.id = {stage}.{user}"
        f" AND t.{user} = u.target_id AND t.specialization_id = {stage}.specialization_id"
    )


def _changed(table: str) -> str:
    """Condition on a staged row ``s``: imported before, and different at the source now."""
    return (
        f"NOT s.is_new AND NOT EXISTS (SELECT 1 FROM {_MAPPED} m WHERE m.source = '{SOURCE}'"
        f" AND m.\"table\" = '{table}' AND m.source_id = s.id AND m.digest = s.digest)"
    )


def _users(cursor, sql: _Sql) -> None:
    users, stage = get_user_model()._meta.db_table, _S[USERS]
    cursor.execute(
        f"INSERT INTO {users} (id, password, is_superuser, username, first_name, last_name,"
        " email, is_staff, is_active, date_joined)"
        f" SELECT target_id, {sql.unusable_password}, FALSE, username, first_name, last_name,"
        f" email, is_staff, is_active, COALESCE(date_joined, {sql.now}) FROM {stage}"
        " WHERE is_new"
    )
    # The replaced system's ids stay the students' ids for the API's senders.
    cursor.execute(
        f"INSERT INTO {_EXTERNAL} (source, external_id, user_id, created_at)"
        f" SELECT %s, CAST(s.id AS TEXT), s.target_id, {sql.now} FROM {stage} s"
        f" WHERE NOT EXISTS (SELECT 1 FROM {_EXTERNAL} e WHERE e.source = %s"
        " AND e.external_id = CAST(s.id AS TEXT))",
        [SOURCE, SOURCE],
    )
    cursor.execute(
        f"UPDATE {users} SET username = s.username, email = s.email,"
        " first_name = s.first_name, last_name = s.last_name, is_staff = s.is_staff,"
        f" is_active = s.is_active FROM {stage} s"
        f" WHERE {users}.id = s.target_id AND {_changed(USERS)}"
    )


_TOTALS = (
    "total_xp",
    "completed_sessions",
    "completed_projects",
    "theory_hours_completed",
    "practice_hours_completed",
)


def _progress(cursor, sql: _Sql, stamp: str) -> None:
    """New rows with one opening event each; changed rows move by the source's change.

    The events of LEDGER_SOURCE on a row sum to the totals the source held at
    the last run, so a change event carries the source's difference since, and
    what the product added meanwhile stays. A level is never lowered.
    """
    progress, stage = SpecializationProgress._meta.db_table, _S[PROGRESS]
    totals = ", ".join(_TOTALS)
    amounts = ", ".join(event for event, _ in LEDGER_FIELDS)
    cursor.execute(
        f"INSERT INTO {progress} (id, student_id, specialization_id, current_level, {totals},"
        " last_activity, created_at)"
        f" SELECT s.target_id, u.target_id, s.specialization_id, s.current_level,"
        f" {', '.join(f's.{name}' for name in _TOTALS)}, s.last_activity,"
        f" COALESCE(s.created_at, {sql.now})"
        f" FROM {stage} s JOIN {_S[USERS]} u ON u.id = s.student_id WHERE s.is_new"
    )
    event_columns = (
        f"progress_id, source, idempotency_key, reason, occurred_at, recorded_at, level_before,"
        f" level_after, {amounts}"
    )
    cursor.execute(
        f"INSERT INTO {_EVENTS} ({event_columns})"
        f" SELECT s.target_id, %s, 'progress:' || CAST(s.id AS TEXT), %s,"
        f" COALESCE(s.last_activity, s.created_at, {sql.now}), {sql.now}, s.current_level,"
        f" s.current_level, {', '.join(f's.{name}' for name in _TOTALS)}"
        f" FROM {stage} s WHERE s.is_new",
        [LEDGER_SOURCE, OPENING_REASON],
    )
    # Changed rows: the difference between the source's totals and this source's events.
    differences = ", ".join(
        f"s.{total} - COALESCE(SUM(e.{event}), 0)" for event, total in LEDGER_FIELDS
    )
    key = "'progress:' || CAST(s.id AS TEXT) || '@' || %s"
    staged_totals = ", ".join(f"s.{name}" for name in _TOTALS)
    cursor.execute(
        f"INSERT INTO {_EVENTS} ({event_columns})"
        f" SELECT p.id, %s, {key}, %s, {sql.now}, {sql.now}, p.current_level,"
        f" {sql.greatest}(p.current_level, s.current_level), {differences}"
        f" FROM {stage} s JOIN {progress} p ON p.id = s.target_id"
        f" LEFT JOIN {_EVENTS} e ON e.progress_id = p.id AND e.source = %s"
        f" WHERE {_changed(PROGRESS)}"
        f" GROUP BY p.id, s.id, p.current_level, s.current_level, {staged_totals}",
        [LEDGER_SOURCE, stamp, CHANGE_REASON, LEDGER_SOURCE],
    )
    additions = ", ".join(
        f"{total} = {progress}.{total} + e.{event}" for event, total in LEDGER_FIELDS
    )
    cursor.execute(
        f"UPDATE {progress} SET {additions}, current_level = e.level_after,"
        f" last_activity = s.last_activity FROM {stage} s, {_EVENTS} e"
        f" WHERE {progress}.id = s.target_id AND e.progress_id = s.target_id"
        f" AND e.source = %s AND e.idempotency_key = {key}",
        [LEDGER_SOURCE, stamp],
    )


def _licenses(cursor, sql: _Sql) -> None:
    licenses, stage = UserLicense._meta.db_table, _S[LICENSES]
    cursor.execute(
        f"INSERT INTO {licenses} (id, user_id, specialization_id, current_level,"
        " max_achieved_level, started_at, last_advanced_at, is_active)"
        " SELECT s.target_id, u.target_id, s.specialization_id, s.current_level,"
        " s.max_achieved_level, s.started_at, s.last_advanced_at, s.is_active"
        f" FROM {stage} s JOIN {_S[USERS]} u ON u.id = s.user_id WHERE s.is_new"
    )
    cursor.execute(
        # A rerun never lowers a level the product holds; max_achieved_level never decreases.
        f"UPDATE {licenses} SET current_level = {sql.greatest}({licenses}.current_level,"
        " s.current_level),"
        f" max_achieved_level = {sql.greatest}({licenses}.max_achieved_level,"
        " s.max_achieved_level), started_at = s.started_at,"
        " last_advanced_at = s.last_advanced_at, is_active = s.is_active"
        f" FROM {stage} s WHERE {licenses}.id = s.target_id"
        f" AND {_changed(LICENSES)}"
    )


def _history(cursor) -> None:
    """New history rows only: an audit row is never rewritten, even if the source's was."""
    history, stage = LicenseProgression._meta.db_table, _S[HISTORY]
    cursor.execute(
        f"INSERT INTO {history} (id, license_id, from_level, to_level, advanced_by_id, reason,"
        " created_at)"
        " SELECT h.target_id, l.target_id, h.from_level, h.to_level, u.target_id, h.reason,"
        " COALESCE(h.created_at, l.started_at)"
        f" FROM {stage} h JOIN {_S[LICENSES]} l ON l.id = h.license_id"
        f" LEFT JOIN {_S[USERS]} u ON u.id = h.advanced_by WHERE h.is_new"
    )


def _remember(cursor, sql: _Sql, table: str) -> None:
    """The mapping and each row's digest, for the next run."""
    stage = _S[table]
    cursor.execute(
        f"UPDATE {_MAPPED} SET digest = s.digest, updated_at = {sql.now} FROM {stage} s"
        f' WHERE {_MAPPED}.source = %s AND {_MAPPED}."table" = %s'
        f" AND {_MAPPED}.source_id = s.id AND {_MAPPED}.digest <> s.digest",
        [SOURCE, table],
    )
    cursor.execute(
        f'INSERT INTO {_MAPPED} (source, "table", source_id, target_id, digest, imported_at,'
        f" updated_at) SELECT %s, %s, s.id, s.target_id, s.digest, {sql.now}, {sql.now}"
        f" FROM {stage} s WHERE NOT EXISTS (SELECT 1 FROM {_MAPPED} m WHERE m.source = %s"
        ' AND m."table" = %s AND m.source_id = s.id)',
        [SOURCE, table, SOURCE, table],
    )

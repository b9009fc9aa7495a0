"""The import's writes: staged rows into the product's tables, set-based, one transaction.

For each table: staged rows find their product row through ImportedRow (the
last run's mapping); new ones get ids from the product table's own sequence
and are inserted in one INSERT ... SELECT; rows whose digest changed at the
source are updated in one UPDATE ... FROM; the mapping follows. Desyncs go in
as the source holds them, through the commit guard's scoped bypass.
"""

from django.db import connections

from licenses.guard import unguarded
from licenses.models import LicenseProgression, UserLicense
from specializations.models import LEDGER_FIELDS, ExternalId, ProgressEvent, SpecializationProgress

from .models import ImportedRow
from .replaced_system import HISTORY, LEDGER_SOURCE, LICENSES, PROGRESS, SOURCE, STAGING, USERS
from .source_users import UserColumns, user_columns

OPENING_REASON = "Opening balance: imported from the replaced system"
CHANGE_REASON = "The replaced system's totals changed since the last import"

_S = {table: name for table, (name, _) in STAGING.items()}
_MAPPED = ImportedRow._meta.db_table
_EXTERNAL = ExternalId._meta.db_table
_EVENTS = ProgressEvent._meta.db_table
_PROGRESS = SpecializationProgress._meta.db_table
_TOTALS = tuple(total for _, total in LEDGER_FIELDS)

# A changed progress row against the events of this source on its product row (they
# sum to the totals the source held at the last run): the source's change since, per
# total in LEDGER_FIELDS order. The write adds them; the checks refuse a total below 0.
CHANGED_PROGRESS = (
    f"FROM {_S[PROGRESS]} s JOIN {_PROGRESS} p ON p.id = s.target_id"
    f" LEFT JOIN {_EVENTS} e ON e.progress_id = p.id AND e.source = '{LEDGER_SOURCE}'"
    " WHERE s.changed GROUP BY p.id, s.id, p.current_level, s.current_level, "
    + ", ".join(f"p.{total}, s.{total}" for total in _TOTALS)
)
CHANGE_AMOUNTS = tuple(f"s.{total} - COALESCE(SUM(e.{event}), 0)" for event, total in LEDGER_FIELDS)


def map_existing(*, using: str = "default") -> int:
    """Each staged row's product row where it has one: staging's target_id and changed.

    Runs before the checks, which need it, and writes nothing but staging. A row
    imported before keeps its product row, changed when its digest differs; a
    progress row or licence of a pair the product enrolled since adopts the
    product's row, and a user linked by its external id that user (both changed:
    their digest is unknown, so the source's values are written over them).
    Returns how many staged rows have a product row.
    """
    found = 0
    with connections[using].cursor() as cursor:
        for table, stage in _S.items():
            cursor.execute(
                f"UPDATE {stage} SET target_id = m.target_id, changed = m.digest <> {stage}.digest,"
                f' is_new = FALSE FROM {_MAPPED} m WHERE m.source = %s AND m."table" = %s'
                f" AND m.source_id = {stage}.id",
                [SOURCE, table],
            )
            found += cursor.rowcount
            if table in (PROGRESS, LICENSES):
                found += _adopt(cursor, table)
            if table == USERS:  # linked by hand (or by an earlier API sender) before the first run
                cursor.execute(
                    f"UPDATE {stage} SET target_id = e.user_id, changed = TRUE, is_new = FALSE"
                    f" FROM {_EXTERNAL} e WHERE {stage}.target_id IS NULL AND e.source = %s"
                    f" AND e.external_id = CAST({stage}.id AS TEXT)",
                    [SOURCE],
                )
                found += cursor.rowcount
    return found


def write(*, using: str = "default") -> None:
    """The staged rows into the product (after map_existing and the checks)."""
    connection = connections[using]
    users = user_columns(using=using)
    with unguarded(using), connection.cursor() as cursor:
        sql = _Sql(connection.vendor)
        cursor.execute(f"SELECT {sql.now}")
        stamp = str(cursor.fetchone()[0])  # this run's mark in its ledger keys
        _new_ids(cursor, sql, USERS, users.table_name, users.pk_column)
        _users(cursor, sql, users)
        _new_ids(cursor, sql, PROGRESS, SpecializationProgress._meta.db_table, "id")
        _progress(cursor, sql, stamp)
        _new_ids(cursor, sql, LICENSES, UserLicense._meta.db_table, "id")
        _licenses(cursor, sql)
        _new_ids(cursor, sql, HISTORY, LicenseProgression._meta.db_table, "id")
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


def _new_ids(cursor, sql: _Sql, table: str, target: str, pk: str) -> None:
    """Rows without a product row get ids from the product table's own sequence."""
    stage = _S[table]
    if sql.vendor == "postgresql":
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [f'"{target}"', pk])
        (sequence,) = cursor.fetchone()
        cursor.execute(
            f"UPDATE {stage} SET is_new = TRUE, target_id = nextval(%s) WHERE target_id IS NULL",
            [sequence],
        )
    else:  # one writer at a time: the ids after the table's highest
        cursor.execute(
            f"UPDATE {stage} SET is_new = TRUE, target_id = n.number FROM (SELECT id,"
            f' (SELECT COALESCE(MAX("{pk}"), 0) FROM "{target}") + row_number() OVER (ORDER BY id)'
            f" AS number FROM {stage} WHERE target_id IS NULL) n WHERE {stage}.id = n.id"
        )


def _adopt(cursor, table: str) -> int:
    """A pair that already has a product row (enrolled since the last run) keeps it."""
    stage, user = _S[table], "student_id" if table == PROGRESS else "user_id"
    target = (SpecializationProgress if table == PROGRESS else UserLicense)._meta.db_table
    cursor.execute(
        f"UPDATE {stage} SET target_id = t.id, changed = TRUE, is_new = FALSE"
        f" FROM {target} t, {_S[USERS]} u WHERE {stage}.target_id IS NULL"
        f" AND u.id = {stage}.{user} AND t.{user} = u.target_id"
        f" AND t.specialization_id = {stage}.specialization_id"
    )
    return cursor.rowcount


def _users(cursor, sql: _Sql, users: UserColumns) -> None:
    """New accounts, their external ids, and the changed ones (names, flags, username).

    The columns are the user model's (imports/source_users.py): Django's auth.User
    or the host project's own.
    """
    stage = _S[USERS]
    columns = {
        users.pk: "target_id",
        users.password: sql.unusable_password,
        users.username: "username",
        users.email: "email",
        users.first_name: "first_name",
        users.last_name: "last_name",
        users.is_staff: "is_staff",
        users.is_active: "is_active",
        users.is_superuser: "FALSE",
        users.date_joined: f"COALESCE(date_joined, {sql.now})",
    }
    columns = {column: value for column, value in columns.items() if column is not None}
    columns.update({column: "%s" for column, _ in users.defaults})
    cursor.execute(
        f"INSERT INTO {users.table} ({', '.join(columns)}) SELECT {', '.join(columns.values())}"
        f" FROM {stage} WHERE is_new",
        [value for _, value in users.defaults],
    )
    # The replaced system's ids stay the students' ids for the API's senders.
    cursor.execute(
        f"INSERT INTO {_EXTERNAL} (source, external_id, user_id, created_at)"
        f" SELECT %s, CAST(s.id AS TEXT), s.target_id, {sql.now} FROM {stage} s"
        f" WHERE NOT EXISTS (SELECT 1 FROM {_EXTERNAL} e WHERE e.source = %s"
        " AND e.external_id = CAST(s.id AS TEXT))",
        [SOURCE, SOURCE],
    )
    row = f"{users.table}.{users.pk} = s.target_id AND s.changed"
    # Usernames that change move out of the way first (a unique mark per user), so two
    # users may swap emails, or one take the email another gave up, in this one run.
    marked = [users.username] + ([users.email] if users.email else [])
    cursor.execute(
        f"UPDATE {users.table} SET "
        + ", ".join(f"{column} = '!import:' || CAST(s.target_id AS TEXT)" for column in marked)
        + f" FROM {stage} s WHERE {row} AND {users.table}.{users.username} <> s.username"
    )
    staged = ("username", "email", "first_name", "last_name", "is_staff", "is_active")
    changes = {column: value for column, value in columns.items() if value in staged}
    cursor.execute(
        f"UPDATE {users.table} SET "
        + ", ".join(f"{column} = s.{value}" for column, value in changes.items())
        + f" FROM {stage} s WHERE {row}"
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
    key = "'progress:' || CAST(s.id AS TEXT) || '@' || %s"
    cursor.execute(
        f"INSERT INTO {_EVENTS} ({event_columns})"
        f" SELECT p.id, %s, {key}, %s, {sql.now}, {sql.now}, p.current_level,"
        f" {sql.greatest}(p.current_level, s.current_level), {', '.join(CHANGE_AMOUNTS)}"
        f" {CHANGED_PROGRESS}",
        [LEDGER_SOURCE, stamp, CHANGE_REASON],
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
        " AND s.changed"
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

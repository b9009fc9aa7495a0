"""The commit-time guard on PostgreSQL: no transaction may leave a touched pair out of sync.

Deferred constraint triggers on the progress and licence tables check, at
COMMIT, every (user, specialization) pair whose rows the transaction inserted,
deleted or changed the level of: both rows at the same level, or neither row,
or the commit fails with an error naming the pair and its two levels. It sees
raw SQL, queryset ``update()``, ``bulk_create`` and deletes alike; it does not
see TRUNCATE, a session with ``session_replication_role = replica`` (restores
with triggers disabled) or SQLite, which is why ``check_sync`` still runs.

The triggers follow the setting ``SYNC_DB_GUARD`` (on by default): they are
(re)created after every ``migrate`` and dropped when it is off, as the desync
view is rebuilt. ``unguarded()`` lets one transaction through on purpose
(restores, imports, the demo's injected desyncs); from psql the same is
``SELECT set_config('academy.sync_guard', 'off', true);`` inside the transaction.
"""

from contextlib import contextmanager

from django.db import DatabaseError, IntegrityError, connections, transaction

from specializations.models import SpecializationProgress

from .conf import app_settings
from .models import UserLicense

FUNCTION = "academy_sync_guard"
BYPASS = "academy.sync_guard"  # set to 'off' for one transaction by unguarded()
SQLSTATE = "23000"  # integrity_constraint_violation: Django raises IntegrityError
MESSAGE_PREFIX = "sync guard:"
HINT = (
    "Change both rows in one transaction (the services and the hook do), or let a "
    "deliberate desync through with licenses.guard.unguarded()."
)

_PROGRESS = SpecializationProgress._meta.db_table
_LICENSE = UserLicense._meta.db_table
# (table, its user column): both sides of a pair, for the function and the triggers.
TABLES = ((_PROGRESS, "student_id"), (_LICENSE, "user_id"))


def _check_pair(row: str, user_column: str) -> str:
    """PL/pgSQL that raises when the pair of ``row`` (NEW or OLD) is out of sync."""
    user, specialization = f"{row}.{user_column}", f"{row}.specialization_id"
    return f"""
        SELECT (SELECT p.current_level FROM {_PROGRESS} p
                 WHERE p.student_id = {user} AND p.specialization_id = {specialization}),
               (SELECT l.current_level FROM {_LICENSE} l
                 WHERE l.user_id = {user} AND l.specialization_id = {specialization})
          INTO progress_level, license_level;
        IF progress_level IS DISTINCT FROM license_level THEN
            RAISE EXCEPTION USING
                ERRCODE = '{SQLSTATE}',
                MESSAGE = format(
                    '{MESSAGE_PREFIX} the pair (user %s, %s) would be left out of sync: '
                    'progress level %s, licence level %s',
                    {user}, {specialization},
                    COALESCE(progress_level::text, 'none'), COALESCE(license_level::text, 'none')
                ),
                HINT = '{HINT}';
        END IF;"""


def _function_sql(table: str, user_column: str) -> str:
    """One trigger function per table: its columns by name, both levels in one query.

    Only a pair's two levels matter: both rows at the same level, or neither row
    (two NULLs are not distinct). An update that moves a row to another pair
    checks the pair it left as well.
    """
    moved = (
        f"(OLD.{user_column}, OLD.specialization_id)"
        f" IS DISTINCT FROM (NEW.{user_column}, NEW.specialization_id)"
    )
    return f"""
CREATE OR REPLACE FUNCTION {_function(table)}() RETURNS trigger LANGUAGE plpgsql AS $guard$
DECLARE
    progress_level integer;
    license_level integer;
BEGIN
    IF current_setting('{BYPASS}', true) = 'off' THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN{_check_pair("NEW", user_column)}
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND {moved}) THEN{_check_pair("OLD", user_column)}
    END IF;
    RETURN NULL;
END
$guard$
"""


def _function(table: str) -> str:
    return f"{FUNCTION}_{table.split('_', 1)[0]}"


def _trigger_names(table: str) -> tuple[str, str]:
    return f"{table}_sync_guard_rows", f"{table}_sync_guard_levels"


def _create_sql() -> list[str]:
    statements = []
    for table, user_column in TABLES:
        rows, levels = _trigger_names(table)
        statements.append(_function_sql(table, user_column))
        deferred = "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
        statements += [
            f"DROP TRIGGER IF EXISTS {rows} ON {table}",
            f"DROP TRIGGER IF EXISTS {levels} ON {table}",
            f"CREATE CONSTRAINT TRIGGER {rows} AFTER INSERT OR DELETE ON {table} {deferred}"
            f" EXECUTE FUNCTION {_function(table)}()",
            # Only a change of level or of key can break a pair: an XP update costs nothing.
            f"CREATE CONSTRAINT TRIGGER {levels} AFTER UPDATE ON {table} {deferred}"
            " WHEN (OLD.current_level IS DISTINCT FROM NEW.current_level"
            f" OR OLD.{user_column} IS DISTINCT FROM NEW.{user_column}"
            " OR OLD.specialization_id IS DISTINCT FROM NEW.specialization_id)"
            f" EXECUTE FUNCTION {_function(table)}()",
        ]
    return statements


def _drop_sql() -> list[str]:
    statements = [
        f"DROP TRIGGER IF EXISTS {name} ON {table}"
        for table, _ in TABLES
        for name in _trigger_names(table)
    ]
    return [*statements, *(f"DROP FUNCTION IF EXISTS {_function(table)}()" for table, _ in TABLES)]


def expected_triggers() -> set[str]:
    return {name for table, _ in TABLES for name in _trigger_names(table)}


def installed_triggers(using: str = "default") -> set[str]:
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname = ANY(%s)",
            [sorted(expected_triggers())],
        )
        return {name for (name,) in cursor.fetchall()}


def sync_triggers(*, using: str = "default", enabled: bool | None = None) -> bool:
    """Create or drop the triggers to match ``SYNC_DB_GUARD``; True when they are in place."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    enabled = app_settings.SYNC_DB_GUARD if enabled is None else enabled
    with transaction.atomic(using=using), connection.cursor() as cursor:
        for statement in _create_sql() if enabled else _drop_sql():
            cursor.execute(statement)
    return enabled


def sync_triggers_after_migrate(sender, using="default", plan=None, **kwargs) -> None:
    """post_migrate: after the tables may have been rebuilt, put the triggers back."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    tables = set(connection.introspection.table_names())
    if {_PROGRESS, _LICENSE} <= tables:
        sync_triggers(using=using)


@contextmanager
def unguarded(using: str = "default"):
    """Let the transaction this block runs in commit pairs out of sync, on purpose.

    Opens a transaction (or joins the caller's) and turns the guard off for
    all of it, up to its commit, since the guard checks at commit: a restore,
    an import, a deliberate desync in a demo or a test. Transaction-local
    (``set_config(..., true)``), so no session keeps it, behind pgbouncer too.
    Does nothing on SQLite, which has no guard.
    """
    connection = connections[using]
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, 'off', true)", [BYPASS])
        yield


def check_now(using: str = "default") -> None:
    """Run the guard's pending checks now instead of at COMMIT (raises IntegrityError).

    For callers that must know before they report success inside the transaction,
    as the admin's delete does; the rest of the transaction is checked per statement.
    """
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET CONSTRAINTS {', '.join(sorted(expected_triggers()))} IMMEDIATE")


def is_guard_error(exc: BaseException) -> bool:
    """Whether a database error is the guard refusing a commit."""
    if not isinstance(exc, IntegrityError):
        return False
    cause = exc.__cause__
    return getattr(cause, "pgcode", None) == SQLSTATE and MESSAGE_PREFIX in str(exc)


def guard_message(exc: DatabaseError) -> str:
    """The guard's refusal as one line for a person (the pair and its two levels)."""
    return str(exc).strip().splitlines()[0].removeprefix("ERROR:").strip()

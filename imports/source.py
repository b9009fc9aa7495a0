"""Reading the replaced system's database: read-only, one snapshot, in batches.

The whole read is one READ ONLY, REPEATABLE READ transaction (every table from
the same snapshot, and the source refuses any write), through server-side
cursors: memory holds one batch, whatever the size of the source.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions

from .exceptions import SourceUnreadable

BATCH_SIZE = 5000

# What the import reads of each source table (imports/source_schema.sql), in id order.
QUERIES = {
    "users": (
        "SELECT id, name, first_name, last_name, email, role::text, is_active, created_at"
        " FROM users ORDER BY id"
    ),
    "specialization_progress": (
        "SELECT id, student_id, specialization_id, current_level, total_xp, completed_sessions,"
        " completed_projects, theory_hours_completed, practice_hours_completed, last_activity,"
        " created_at FROM specialization_progress ORDER BY id"
    ),
    "user_licenses": (
        "SELECT id, user_id, specialization_type, current_level, max_achieved_level, started_at,"
        " last_advanced_at, is_active FROM user_licenses ORDER BY id"
    ),
    "license_progressions": (
        "SELECT id, user_license_id, from_level, to_level, advanced_by, advancement_reason,"
        " advanced_at FROM license_progressions ORDER BY id"
    ),
}
TABLES = tuple(QUERIES)


class SourceDatabase:
    """An open, read-only snapshot of the source; use as ``with open_source(url) as source``."""

    def __init__(self, connection, *, batch_size: int = BATCH_SIZE):
        self._connection = connection
        self._batch_size = batch_size

    def batches(self, table: str) -> Iterator[list[tuple]]:
        """The rows of ``table`` (see QUERIES), ``batch_size`` at a time, from a server cursor."""
        with self._connection.cursor(name=f"import_{table}") as cursor:
            cursor.itersize = self._batch_size
            cursor.execute(QUERIES[table])
            while batch := cursor.fetchmany(self._batch_size):
                yield batch


@contextmanager
def open_source(url: str, *, batch_size: int = BATCH_SIZE) -> Iterator[SourceDatabase]:
    if not url.startswith(("postgres://", "postgresql://")):
        raise SourceUnreadable(url, "expected a PostgreSQL URL (postgresql://user@host/name)")
    try:
        connection = psycopg2.connect(url, connect_timeout=10)
    except psycopg2.Error as exc:
        raise SourceUnreadable(url, str(exc)) from exc
    try:
        connection.set_session(
            isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True
        )
        try:
            yield SourceDatabase(connection, batch_size=batch_size)
        except psycopg2.Error as exc:
            raise SourceUnreadable(url, str(exc)) from exc
    finally:
        connection.close()  # a read-only transaction: nothing to commit

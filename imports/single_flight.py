"""One import_source at a time on a product database: its transaction, and the claim in it;
and one import_progress at a time per ledger source.

Two runs at once would both find the same users new and both insert them: the
second would fail on a unique index after minutes of work. So an import runs in
one transaction that claims the database first, and the claim ends with it
(commit, rollback, or a killed process):

- PostgreSQL: a transaction-level advisory lock, tried without waiting; a second
  import is refused at once, naming the backend that holds it. No session state,
  so it holds behind pgbouncer in transaction mode too.
- SQLite: the database's write lock, taken at the start (``BEGIN IMMEDIATE``
  where the project sets ``transaction_mode``, a write otherwise); a second
  import waits the connection's timeout for it, then is refused.
"""

from contextlib import contextmanager

from django.db import OperationalError, connections, transaction

from .exceptions import ImportAlreadyRunning
from .models import ImportedRow

# pg_locks shows a two-key advisory lock as (classid, objid, objsubid = 2).
LOCK_CLASS = int.from_bytes(b"acad")  # this product's advisory locks
LOCK_IMPORT_SOURCE = 25  # import_source (issue 25)
LOCK_LEDGER_SOURCE = int.from_bytes(b"acls")  # import_progress: one ledger source each
SQLITE_BUSY = "SQLite: another connection held the database's write lock past the timeout"


@contextmanager
def import_transaction(*, claim: bool, using: str = "default"):
    """A transaction for one import; with ``claim``, refused while another import holds one."""
    connection = connections[using]
    try:
        with transaction.atomic(using=using):
            if claim:
                _claim(connection)
            yield
    except OperationalError as exc:
        if connection.vendor == "sqlite" and "locked" in str(exc):
            raise ImportAlreadyRunning(SQLITE_BUSY) from exc
        raise


def _claim(connection) -> None:
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            # The write lock now, not at the first write after minutes of reading.
            cursor.execute(f"UPDATE {ImportedRow._meta.db_table} SET id = id WHERE 1 = 0")
            return
        for _ in range(2):  # the holder may finish between the try and the look
            cursor.execute(
                "SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_CLASS, LOCK_IMPORT_SOURCE]
            )
            if cursor.fetchone()[0]:
                return
            if holder := _holder(cursor):
                raise ImportAlreadyRunning(holder)
        raise ImportAlreadyRunning("a backend that has just finished or is ending")


def _holder(cursor) -> str | None:
    cursor.execute(
        "SELECT a.pid, a.application_name, host(a.client_addr), a.xact_start"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s"
        " AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database())",
        [LOCK_CLASS, LOCK_IMPORT_SOURCE],
    )
    row = cursor.fetchone()
    if row is None:
        return None
    pid, application, client, started = row
    parts = [f"PostgreSQL backend pid {pid}"]
    if application:
        parts.append(f"application {application!r}")
    if client:
        parts.append(f"from {client}")
    if started is not None:
        parts.append(f"its transaction started {started.isoformat(timespec='seconds')}")
    return ", ".join(parts)


def claim_ledger_source(source: str, *, using: str = "default") -> None:
    """Wait for any other import of the ledger ``source`` to end, then hold it to this
    transaction's end: two runs of one file at once apply it once (the second finds its
    keys recorded). PostgreSQL: a transaction-level advisory lock on the source's hash;
    SQLite: the database's write lock, as ``_claim`` takes it."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(f"UPDATE {ImportedRow._meta.db_table} SET id = id WHERE 1 = 0")
            return
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LOCK_LEDGER_SOURCE, source]
        )

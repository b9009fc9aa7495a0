"""The scope the desync check runs in: one snapshot, a time limit, a steered planner.

PostgreSQL: a transaction (a savepoint when the caller already has one) in
which ``statement_timeout`` and the planner settings are set locally, and put
back afterwards so an enclosing transaction never inherits them. SQLite: reads
in autocommit (its transactions here are BEGIN IMMEDIATE and would block
writers) with a progress handler as the time limit.
"""

import time
from contextlib import contextmanager

from django.db import OperationalError, connections, transaction

from .exceptions import CheckTimedOut

QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for statement_timeout

# A merge full join over the two covering indexes reads both tables once, in
# (user, specialization) order, with index-only scans; the default hash full
# join reads and hashes a whole table first.
PLANNER = {"enable_hashjoin": "off", "enable_sort": "off"}


def _set(cursor, values: dict[str, str]) -> None:
    calls = ", ".join("set_config(%s, %s, true)" for _ in values)
    cursor.execute(f"SELECT {calls}", [item for pair in values.items() for item in pair])


@contextmanager
def _postgresql(connection, timeout: float | None):
    values = dict(PLANNER)
    if timeout:
        values["statement_timeout"] = str(max(1, round(timeout * 1000)))
    nested = connection.in_atomic_block
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if nested:
            names = list(values)
            cursor.execute("SELECT " + ", ".join("current_setting(%s)" for _ in names), names)
            previous = dict(zip(names, cursor.fetchone(), strict=True))
        _set(cursor, values)
        try:
            yield
        except OperationalError as exc:
            if getattr(exc.__cause__, "pgcode", None) == QUERY_CANCELED:
                raise CheckTimedOut(timeout) from exc
            raise
        if nested:  # SET LOCAL would otherwise outlive the savepoint
            _set(cursor, previous)


@contextmanager
def _sqlite(connection, timeout: float | None):
    if not timeout:
        yield
        return
    deadline = time.monotonic() + timeout
    connection.ensure_connection()
    raw = connection.connection
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        yield
    except OperationalError as exc:  # "interrupted"
        if time.monotonic() > deadline:
            raise CheckTimedOut(timeout) from exc
        raise
    finally:
        raw.set_progress_handler(None, 0)


@contextmanager
def check_scope(using: str, *, timeout: float | None):
    connection = connections[using]
    if connection.vendor == "postgresql":
        with _postgresql(connection, timeout):
            yield
    elif connection.vendor == "sqlite":
        with _sqlite(connection, timeout):
            yield
    else:
        with transaction.atomic(using=using):
            yield
